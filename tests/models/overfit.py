"""The tiny-batch overfit loop every model's tests run: Adam on one fixed batch, the loss parts per step."""

from __future__ import annotations

import torch

from landmarkflow.models.base import LandmarkModel


def fit_batch(
    model: LandmarkModel,
    images: torch.Tensor,
    targets: dict[str, torch.Tensor],
    steps: int,
    lr: float,
    settle_steps: int = 0,
) -> list[dict[str, float]]:
    """Train `model` on this one batch for `steps` Adam steps; each step's total `loss` and the model's named parts.
    The last `settle_steps` run at a tenth of `lr`: at the full rate Adam's steps keep the answer moving, by how much
    depends on the CPU's arithmetic, so a test that asserts where the answer ends should settle it."""
    if not 0 <= settle_steps <= steps:
        raise ValueError(f"settle_steps must be within 0..{steps} (the steps), got {settle_steps}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for step in range(steps):
        if step == steps - settle_steps:
            for group in optimizer.param_groups:
                group["lr"] = lr / 10
        loss, parts = model.loss(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"loss": float(loss), **parts})
    return history
