"""On a cluster every step has the S3 credentials in its environment (from the Secret): none of them may reach a log
line, an MLflow param or tag, where everyone who can read the run would see them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from landmarkflow import steps
from landmarkflow.data.synthetic import synthesize
from landmarkflow.logs import configure_logging
from landmarkflow.services import CREDENTIALS

FAKE = {name: f"fake-{name.lower().replace('_', '-')}-7d2e41" for name in CREDENTIALS}


def test_validate_and_train_log_no_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in FAKE.items():
        monkeypatch.setenv(name, value)
    configure_logging(verbose=True)
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "synthetic"
    synthesize(root, num_train=32, num_test=8, seed=4, image_size=128, progress=False)
    ingested = steps.ingest("synthetic", root, tmp_path / "manifest.parquet")
    steps.validate(ingested, tmp_path / "validation")
    steps.train("configs/hih_synthetic_tiny.yaml", ingested, tmp_path / "train", {"train.epochs": 1})

    client = MlflowClient()
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert {run.data.tags.get("step", "train") for run in runs} == {"validate", "train"}
    recorded = [str(value) for run in runs for value in (*run.data.params.values(), *run.data.tags.values())]
    recorded += [str(value) for experiment in experiments for value in experiment.tags.values()]
    output = capfd.readouterr()
    logged = [output.out, output.err, caplog.text]
    assert not [name for name, value in FAKE.items() if any(value in text for text in (*recorded, *logged))]
