"""A run resumed from its last checkpoint ends with exactly the weights of a run that was never interrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig, load_config
from landmarkflow.models.zoo import build_model
from landmarkflow.tracking import ensure_experiment
from landmarkflow.train.checkpoint import LAST
from landmarkflow.train.durable import CHECKPOINT_DIR, fetch_checkpoints
from landmarkflow.train.trainer import Trainer, seed_everything
from tests.fakes import ONE_CPU, assert_same_weights, dot_face_record


class Killed(Exception):
    """Stands in for SIGKILL: the trainer stops where it is, and only what is on disk survives."""


def _config(num_workers: int) -> ExperimentConfig:
    """A narrow LGCN whose dropout draws from torch's generator every step; momentum SGD and a milestone, so
    that optimiser and schedule state matter too."""
    overrides = {
        "model.filters": 8,
        "model.dropout": 0.3,
        "train.epochs": 3,
        "train.batch_size": 2,
        "train.num_workers": num_workers,
        "train.milestones": [2],
        "train.amp": False,
        "eval.batch_size": 2,
    }
    return load_config("configs/lgcn_synthetic_tiny.yaml", overrides)


def _trainer(config: ExperimentConfig, folder: Path, out_dir: Path, run_id: str | None = None) -> Trainer:
    """What a fresh training process builds before it resumes: seeded generators, a new model, a new trainer."""
    seed_everything(config.train.seed)
    records = [dot_face_record(folder, i) for i in range(6)]
    return Trainer(config, build_model(config.model), records[:4], records[4:], folder, out_dir, ONE_CPU, run_id)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, num_workers: int
) -> None:
    torch.set_num_threads(1)
    config = _config(num_workers)
    uninterrupted = _trainer(config, tmp_path, tmp_path / "uninterrupted")
    expected = uninterrupted.fit()

    steps_per_epoch = uninterrupted.steps_per_epoch
    taken = 0
    step = Trainer._step

    def dies_in_the_second_epoch(self: Trainer, batch: dict, epoch: int) -> float:
        nonlocal taken
        taken += 1
        if taken == steps_per_epoch + 1:
            raise Killed
        return step(self, batch, epoch)

    monkeypatch.setattr(Trainer, "_step", dies_in_the_second_epoch)
    with pytest.raises(Killed):
        _trainer(config, tmp_path, tmp_path / "killed").fit()
    monkeypatch.setattr(Trainer, "_step", step)

    resumed = _trainer(config, tmp_path, tmp_path / "killed")
    assert resumed.resume() and resumed.start_epoch == 1
    history = resumed.fit()
    assert history.train_loss == expected.train_loss
    assert np.array_equal(history.val_nme, expected.val_nme, equal_nan=True)  # nan: epochs that do not validate
    assert_same_weights(uninterrupted.model.state_dict(), resumed.model.state_dict())


def test_an_epoch_killed_between_its_upload_and_its_metrics_still_gets_its_point_on_the_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MlflowClient()
    run_id = client.create_run(ensure_experiment("landmarks/dots")).info.run_id
    config = _config(num_workers=0)
    log_epoch = Trainer._log_epoch

    def dies_before_logging(self: Trainer, epoch: int) -> None:
        raise Killed

    monkeypatch.setattr(Trainer, "_log_epoch", dies_before_logging)
    with pytest.raises(Killed):
        _trainer(config, tmp_path, tmp_path / "out", run_id).fit()
    monkeypatch.setattr(Trainer, "_log_epoch", log_epoch)
    assert [item.path for item in client.list_artifacts(run_id, CHECKPOINT_DIR)] == [f"{CHECKPOINT_DIR}/{LAST}"]
    assert client.get_metric_history(run_id, "train_loss") == []

    resumed = _trainer(config, tmp_path, tmp_path / "fresh", run_id)
    fetch_checkpoints(client, run_id, tmp_path / "fresh")
    assert resumed.resume() and resumed.start_epoch == 1
    history = resumed.fit()
    curve = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train_loss"))
    assert curve == [(epoch + 1, loss) for epoch, loss in enumerate(history.train_loss)]
