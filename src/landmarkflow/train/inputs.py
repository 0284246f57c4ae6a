"""A training's inputs, kept in its MLflow run for nodes that share nothing else with the step that started it: the
ingest record (data hash, DVC remote, the root's place in the version) and the manifest. A node fetches both from
the run, then the images it trains on from the DVC remote by hash."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from mlflow.tracking import MlflowClient

from landmarkflow.steps.results import IngestResult, require_remote

INPUTS_DIR = "inputs"
"""The run's artifact folder for the ingest record and the manifest."""
INGEST_FILE = "ingest.json"
MANIFEST_FILE = "manifest.parquet"


def log_training_inputs(client: MlflowClient, run_id: str, ingested: IngestResult) -> None:
    """Put the ingest record and its manifest into the run; ValueError when the data was pushed to no remote, as a
    node elsewhere could not fetch it."""
    require_remote(ingested, "training nodes elsewhere")
    with tempfile.TemporaryDirectory(prefix="landmarkflow-inputs-") as folder:
        replace(ingested, manifest=MANIFEST_FILE).save(Path(folder) / INGEST_FILE)
        shutil.copyfile(ingested.manifest, Path(folder) / MANIFEST_FILE)
        client.log_artifacts(run_id, folder, INPUTS_DIR)


def fetch_training_inputs(client: MlflowClient, run_id: str, dest: Path) -> IngestResult:
    """The run's ingest record, its manifest fetched into `dest` and named by it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (INGEST_FILE, MANIFEST_FILE):
        with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as folder:
            os.replace(client.download_artifacts(run_id, f"{INPUTS_DIR}/{name}", folder), dest / name)
    return replace(IngestResult.load(dest / INGEST_FILE), manifest=str(dest / MANIFEST_FILE))
