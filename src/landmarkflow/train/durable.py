"""Checkpoints that outlive the pod: each epoch's checkpoint also goes to the training's MLflow run, so it lands
in the tracking server's artifact store (S3 behind a proxied server), not only on the pod's disk.

A train step started again for the same pipeline task (a KFP retry after a pre-emption starts a fresh pod with an
empty disk) finds the run of its earlier attempt by the resume key it was tagged with, fetches the checkpoints
and continues in that run. The key is the same for every attempt of one task and differs across pipeline runs.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from landmarkflow.train.checkpoint import BEST, LAST

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

RESUME_KEY_TAG = "resume_key"
CONFIG_HASH_TAG = "config_hash"
CHECKPOINT_DIR = "resume"
"""The run's artifact folder for last.pt (and best.pt): each upload replaces the one before, only the latest stays."""
RESUME_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,249}")


def check_resume_key(key: str) -> str:
    """`key`, or ValueError: letters, digits and . _ : / - only (it goes into an MLflow search filter), which also
    refuses a KFP placeholder that was never substituted, such as `{{$.pipeline_job_uuid}}`."""
    if not RESUME_KEY_PATTERN.fullmatch(key):
        raise ValueError(
            f"resume key {key!r}: expected 1-250 letters, digits and . _ : / - (starting with a letter or digit)"
        )
    return key


def find_run(client: MlflowClient, experiment_id: str, resume_key: str, config_hash: str) -> Run | None:
    """The newest run of the experiment tagged with `resume_key` that trains this config, if any."""
    found = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.{RESUME_KEY_TAG} = '{check_resume_key(resume_key)}' and tags.{CONFIG_HASH_TAG} = '{config_hash}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def upload_checkpoint(client: MlflowClient, run_id: str, path: Path) -> None:
    """Put `path` into the run's checkpoint folder, replacing the earlier upload of the same name."""
    client.log_artifact(run_id, str(path), CHECKPOINT_DIR)


def fetch_checkpoints(client: MlflowClient, run_id: str, out_dir: Path) -> bool:
    """Make `out_dir`'s last.pt and best.pt the run's own (removing local ones the run has not got); True when the
    run had a last.pt. Each file arrives whole or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = {Path(item.path).name for item in client.list_artifacts(run_id, CHECKPOINT_DIR)}
    for name in (BEST, LAST):
        target = out_dir / name
        if name not in stored:
            target.unlink(missing_ok=True)
            continue
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".fetch-") as folder:
            os.replace(client.download_artifacts(run_id, f"{CHECKPOINT_DIR}/{name}", folder), target)
    return LAST in stored
