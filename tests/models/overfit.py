"""The tiny-batch overfit loop every model's tests run: Adam on one fixed batch, the loss parts per step."""

from __future__ import annotations

import torch

from landmarkflow.models.base import LandmarkModel


def fit_batch(
    model: LandmarkModel, images: torch.Tensor, targets: dict[str, torch.Tensor], steps: int, lr: float
) -> list[dict[str, float]]:
    """Train `model` on this one batch for `steps` Adam steps; each step's total `loss` and the model's named parts."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        loss, parts = model.loss(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"loss": float(loss), **parts})
    return history
