"""What a finished training leaves in its MLflow run, wherever it ran: the loss curves, model.pt and, last,
train_seconds. A step on one machine finishes its run itself; on several nodes, the node that held rank 0 does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from landmarkflow.evaluation.plots import plot_loss_curves
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.train.checkpoint import load_state

MODEL_DIR = "checkpoint"
"""The run's artifact folder for the trained model.pt."""
TRAIN_SECONDS = "train_seconds"
"""Logged last, once model.pt is in the run: a run that has it has finished training."""


def finish_run(client: MlflowClient, run_id: str, out_dir: Path, seconds: float) -> dict[str, Any]:
    """Log `out_dir`'s model.pt and its loss curves into the run, then the training time; model.pt's state."""
    state = load_state(out_dir / CHECKPOINT_FILE)
    plot = plot_loss_curves(state["history"], out_dir / "loss_curves.png")
    client.log_artifact(run_id, str(plot), "plots")
    client.log_artifact(run_id, str(out_dir / CHECKPOINT_FILE), MODEL_DIR)
    client.log_metric(run_id, TRAIN_SECONDS, seconds)
    return state
