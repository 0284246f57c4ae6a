"""Tracking helpers: `log_metrics` logs several metrics in one batch exactly as `log_metric` one by one would,
every experiment is marked as model training for the UI, and processes that open one new store together all start."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from landmarkflow.tracking import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    TELEMETRY_OFF,
    ensure_experiment,
    log_metrics,
    setup_tracking,
)
from tests.stores import TrackingStore


def test_log_metrics_logs_every_value_at_its_step() -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment("metrics"))
    log_metrics(client, run.info.run_id, {"train_loss": 0.5, "val_nme": float("nan"), "lr": 1e-3}, step=2)
    log_metrics(client, run.info.run_id, {"train_loss": 0.25}, step=3)
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(history) == [(2, 0.5), (3, 0.25)]
    assert math.isnan(client.get_run(run.info.run_id).data.metrics["val_nme"])
    assert client.get_metric_history(run.info.run_id, "lr")[0].step == 2


def test_experiments_open_as_model_training_in_the_ui() -> None:
    """New and existing experiments carry the kind that makes the MLflow UI show runs, not the GenAI overview."""
    client = MlflowClient()
    created = client.get_experiment(ensure_experiment("landmarks/synthetic"))
    older = client.create_experiment("landmarks/wflw")
    assert ensure_experiment("landmarks/wflw") == older
    for experiment in (created, client.get_experiment(older)):
        assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND == "custom_model_development"


def test_an_experiment_another_step_created_meanwhile_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two branches of a first run both find no experiment and both create it: the second's create fails in the
    store (name taken) and it takes the first's experiment instead of failing its step."""
    client = MlflowClient()
    lookup = MlflowClient.get_experiment_by_name
    lookups: list[str] = []

    def created_by_the_other_branch_after_this_lookup(self: MlflowClient, name: str) -> Any:
        lookups.append(name)
        if len(lookups) == 1:
            client.create_experiment(name)  # the other branch wins the race
            return None
        return lookup(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", created_by_the_other_branch_after_this_lookup)
    experiment_id = ensure_experiment("landmarks/race")
    assert experiment_id == lookup(client, "landmarks/race").experiment_id and len(lookups) == 2
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND


def test_an_experiment_deleted_in_the_ui_is_refused_with_how_to_restore_it() -> None:
    """MLflow answered a run in it with "The experiment 1 must be in the 'active' state", as a traceback."""
    client = MlflowClient()
    experiment_id = ensure_experiment("landmarks/synthetic")
    client.delete_experiment(experiment_id)
    with pytest.raises(
        ValueError, match=f"'landmarks/synthetic' \\(id {experiment_id}\\) in sqlite:///.* is deleted"
    ) as caught:
        ensure_experiment("landmarks/synthetic")
    assert f"mlflow experiments restore --experiment-id {experiment_id}" in str(caught.value)
    client.restore_experiment(experiment_id)
    assert ensure_experiment("landmarks/synthetic") == experiment_id


@pytest.mark.slow
def test_processes_that_open_one_new_local_store_at_once_all_start(tmp_path: Path) -> None:
    """Four processes set up tracking on the same new sqlite store at once and then use it. Opened with MlflowClient
    alone, 3 or 4 of 4 died here on a duplicate column (each ran MLflow's migrations); setup_tracking creates the
    tables in one of them while the others wait."""
    database = tmp_path / "new" / "mlflow.db"
    code = (
        "from mlflow.tracking import MlflowClient\n"
        "from landmarkflow.tracking import setup_tracking\n"
        "setup_tracking()\n"
        "print(len(MlflowClient().search_experiments()))"
    )
    env = {**os.environ, **TELEMETRY_OFF, "MLFLOW_TRACKING_URI": f"sqlite:///{database}"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, **pipes) for _ in range(4)]
    outputs = [process.communicate(timeout=180) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, [err[-2000:] for _, err in outputs]
    assert [out.split()[-1] for out, _ in outputs] == ["1"] * 4  # the Default experiment, created once


def test_a_tests_store_says_whether_anything_wrote_to_it(isolated_tracking: TrackingStore) -> None:
    """The refusal tests of test_cli assert with this that a refused command logged nothing: reading leaves the
    copied store as it was, a new experiment shows."""
    setup_tracking()
    assert MlflowClient().get_experiment_by_name("Default") is not None
    assert not isolated_tracking.written()
    ensure_experiment("landmarks/synthetic")
    assert isolated_tracking.written()
