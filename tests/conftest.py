"""Shared fixtures: every test gets its own MLflow store, and telemetry is off everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from landmarkflow.tracking import TELEMETRY_OFF


@pytest.fixture(autouse=True)
def isolated_tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh sqlite MLflow store per test, never the user's mlflow/ folder."""
    for key, value in TELEMETRY_OFF.items():
        monkeypatch.setenv(key, value)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("LANDMARKFLOW_ARTIFACTS", str(tmp_path / "artifacts"))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    if mlflow.active_run():
        mlflow.end_run()
