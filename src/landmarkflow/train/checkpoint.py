"""Checkpoints: written atomically every epoch, so a killed run resumes from its last finished epoch.

A checkpoint travels through shared storage (the tracking server's artifact store), so loading it must run no
code: it holds tensors and plain values only and is read with `torch.load(weights_only=True)`, which refuses
anything else. Saving checks the same rule, so a value that could not be loaded back fails at the first save,
not at a resume after a pre-emption.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from landmarkflow.config import ExperimentConfig, parse_config
from landmarkflow.fileio import atomic_path
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.zoo import build_model

LAST = "last.pt"
BEST = "best.pt"
PLAIN_SCALARS = (str, int, float, bool, type(None))
"""Exact types: subclasses such as numpy.float64 pickle as their own class, which weights_only refuses."""
WHAT_A_CHECKPOINT_HOLDS = "tensors and plain dicts, lists, tuples, str, int, float, bool and None"
CALIBRATED_VAL_NME = "calibrated_val_nme"
"""model.pt's key for the validation NME after the shape calibration's fit (absent where none was fitted)."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """torch.save through a temp file and rename; TypeError naming the field if `state` holds anything that
    `load_state` would refuse."""
    _require_plain(state, "")
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_state(path: Path) -> dict[str, Any]:
    """Read a checkpoint without running code from it; ValueError naming the file if it carries anything but
    weights and plain values."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        carried = f"a pickled object ({found.group(1)})" if found else "a pickled object"
        raise ValueError(
            f"{path}: refused to load this checkpoint: it carries {carried}, and a checkpoint may hold only "
            f"{WHAT_A_CHECKPOINT_HOLDS} (loading anything else could run code from the file)"
        ) from exc


def load_model(path: Path) -> tuple[LandmarkModel, ExperimentConfig]:
    """Rebuild the model and its config from a checkpoint, in eval mode."""
    state = load_state(path)
    config = parse_config(state["config"], source=path)
    model = build_model(config.model)
    model.load_state_dict(state["model"])
    return model.eval(), config


def kept_val_nme(state: dict[str, Any]) -> float:
    """The validation NME of the weights a model.pt holds: after its shape calibration where one was fitted, else
    the kept epoch's (the last, or the best with `keep: best_val`); NaN where that epoch did not validate. A
    model.pt written before trainings stored the calibrated number gives its kept epoch's, uncalibrated."""
    if CALIBRATED_VAL_NME in state:
        return float(state[CALIBRATED_VAL_NME])
    val_nme, epoch = state["history"]["val_nme"], state["epoch"]
    return float(val_nme[epoch]) if 0 <= epoch < len(val_nme) else float("nan")


def _require_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"checkpoint field {where or '(top level)'} has a {type(key).__name__} key")
            _require_plain(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            _require_plain(inner, f"{where}[{index}]")
    elif not (isinstance(value, torch.Tensor) or type(value) in PLAIN_SCALARS):
        raise TypeError(
            f"checkpoint field {where} is a {type(value).__module__}.{type(value).__qualname__}; a checkpoint holds "
            f"only {WHAT_A_CHECKPOINT_HOLDS}, so that it loads with weights_only=True"
        )
