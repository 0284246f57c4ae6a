"""Checkpoints: written atomically every epoch, so a killed run resumes from its last finished epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from landmarkflow.config import ExperimentConfig, parse_config
from landmarkflow.fileio import atomic_path
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.zoo import build_model

LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """torch.save through a temp file and rename."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_state(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by this module (weights and plain Python values only)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(path: Path) -> tuple[LandmarkModel, ExperimentConfig]:
    """Rebuild the model and its config from a checkpoint, in eval mode."""
    state = load_state(path)
    config = parse_config(state["config"], source=path)
    model = build_model(config.model)
    model.load_state_dict(state["model"])
    return model.eval(), config
