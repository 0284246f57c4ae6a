"""Shared fixtures: every test gets its own MLflow store, and telemetry is off everywhere."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow.runtime import THREADS_ENV, share_cores
from landmarkflow.tracking import TELEMETRY_OFF


def pytest_configure(config: pytest.Config) -> None:
    """Each of `make test`'s processes computes on its share of the cores, through OMP_NUM_THREADS, which PyTorch,
    onnxruntime (runtime.open_session) and the processes a test starts all follow. Left to themselves, the two
    processes ran PyTorch and onnxruntime on every core each, and their threads spun for cores the other held."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share_cores(workers)
        torch.set_num_threads(int(os.environ[THREADS_ENV]))


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new sqlite MLflow store, made once per test process: MLflow builds a new store by running its schema
    migrations, 1.3-2.3 s that every test touching MLflow paid again. Each test gets a copy of this one instead."""
    database = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{database}").search_experiments(max_results=1)
    return database


@pytest.fixture(autouse=True)
def isolated_tracking(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_store: Path
) -> Iterator[str]:
    """A fresh sqlite MLflow store per test, never the user's mlflow/ folder. It lies beside tmp_path, not in it, so
    that a test can assert that a command left nothing behind; a test that never wrote to it leaves no copy."""
    for key, value in TELEMETRY_OFF.items():
        monkeypatch.setenv(key, value)
    database = tmp_path_factory.mktemp("store") / "mlflow.db"
    shutil.copyfile(empty_store, database)
    with sqlite3.connect(database) as store:  # the Default experiment's artifacts as a new store here would put them
        store.execute("UPDATE experiments SET artifact_location = ?", (str(database.parent / "mlruns" / "0"),))
    written = database.stat().st_mtime_ns
    uri = f"sqlite:///{database}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("LANDMARKFLOW_ARTIFACTS", str(tmp_path / "artifacts"))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    if mlflow.active_run():
        mlflow.end_run()
    if database.stat().st_mtime_ns == written:
        shutil.rmtree(database.parent)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a slow or integration test run first. `make test` hands out whole files to two processes in this
    order (xdist's loadfile without its reordering, which put the files with most tests first): a five-minute
    file of one test then started last, and one core ran it alone while the other idled; started first, the short
    files fill in around it."""
    heavy = {item.path for item in items if item.get_closest_marker("slow") or item.get_closest_marker("integration")}
    items.sort(key=lambda item: item.path not in heavy)
