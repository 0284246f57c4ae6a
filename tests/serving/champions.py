"""A tiny model trained, registered and promoted in a store of its own, and a real `landmarkflow serve` process
answering with it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from skimage import data

from landmarkflow.data.synthetic import synthesize
from landmarkflow.tracking import TELEMETRY_OFF
from landmarkflow.workflow import WorkflowResult, run_workflow
from tests.servers import ServerProcess, serve_on_free_port

TINY_TRAINING = {
    "train.epochs": 1,
    "train.milestones": [],
    "gate.max_nme": 10.0,
    "gate.min_baseline_ratio": None,
    "gate.parity_tolerance": 1.0,
    "eval.overlay_count": 2,
}
"""One epoch on a few faces, gates wide open: the point is a real trained, exported and promoted model, not a good
one (its near-flat heatmaps may even decode differently in PyTorch and onnxruntime)."""


@dataclass(frozen=True)
class Champion:
    """A promoted model in a store of its own: `env` points any process at that store."""

    uri: str
    workflow: WorkflowResult
    env: dict[str, str]
    photo: Path


def train_champion(folder: Path, config: str, model_overrides: dict | None = None) -> Champion:
    """Render 40 + 16 faces at 128 px, run the whole workflow on `config` for one epoch, promote it."""
    root = folder / "synthetic"
    synthesize(root, num_train=40, num_test=16, seed=5, image_size=128, progress=False)
    env = {
        **TELEMETRY_OFF,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "LANDMARKFLOW_ARTIFACTS": str(folder / "artifacts"),
    }
    overrides = {**TINY_TRAINING, "data.root": str(root), **(model_overrides or {})}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        workflow = run_workflow(config, folder / "run", overrides, synth=None)
    assert workflow.promote.promoted, workflow.promote.message
    photo = folder / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return Champion(f"models:/{workflow.gate.registered_name}@champion", workflow, env, photo)


def serve_process(champion: Champion, log_path: Path, *args: str) -> tuple[ServerProcess, str]:
    """`landmarkflow serve --model <champion>` on a free loopback port (`serve_on_free_port`)."""
    return serve_on_free_port(["--model", champion.uri, *args], log_path, {**os.environ, **champion.env})
