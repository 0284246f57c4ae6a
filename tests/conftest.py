"""Shared fixtures and hooks: every test gets its own MLflow store, telemetry is off everywhere, each test process
computes on its share of the cores, and the files with long tests start first."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow.threads import env_threads, share_cores
from landmarkflow.tracking import TELEMETRY_OFF
from tests.stores import TrackingStore, change_counter


def pytest_configure(config: pytest.Config) -> None:
    """Each of `make test`'s processes computes on its share of the cores through OMP_NUM_THREADS: PyTorch's
    threads here, onnxruntime's (runtime.open_session) and those of the processes a test starts. Left to themselves,
    the two processes ran PyTorch and onnxruntime on every core each, and their threads spun for cores the other
    held."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share_cores(workers)
        threads = env_threads()
        if threads is not None:
            torch.set_num_threads(threads)


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
) -> Iterator[TrackingStore]:
    """A fresh sqlite MLflow store per test, never the user's mlflow/ folder. It lies beside tmp_path, not in it, so
    that a test can assert that a command left nothing behind (and, with `written()`, logged nothing); a copy that
    the test never wrote to is removed after it."""
    for key, value in TELEMETRY_OFF.items():
        monkeypatch.setenv(key, value)
    database = tmp_path_factory.mktemp("store") / "mlflow.db"
    shutil.copyfile(empty_store, database)
    # A new store's Default experiment keeps its artifacts in ./mlruns of the working directory it was made in; the
    # copies keep theirs beside their own store.
    with closing(sqlite3.connect(database)) as store, store:
        location = str(database.parent / "mlruns" / "0")
        store.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (location,))
    tracking = TrackingStore(database, change_counter(database))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    monkeypatch.setenv("LANDMARKFLOW_ARTIFACTS", str(tmp_path / "artifacts"))
    mlflow.set_tracking_uri(tracking.uri)
    mlflow.set_registry_uri(tracking.uri)
    yield tracking
    if mlflow.active_run():
        mlflow.end_run()
    if not tracking.written():
        shutil.rmtree(database.parent)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a slow or integration test run first. `make test` hands out whole files to two processes in this
    order (xdist's loadfile without its reordering, which put the files with most tests first): a five-minute
    file of one test then started last, and one core ran it alone while the other idled; started first, the short
    files fill in around it."""
    heavy = {item.path for item in items if item.get_closest_marker("slow") or item.get_closest_marker("integration")}
    items.sort(key=lambda item: item.path not in heavy)
