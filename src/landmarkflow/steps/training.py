"""The train step: an MLflow run for the experiment, training in it (DDP through torchrun when nproc > 1)."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig, load_config
from landmarkflow.evaluation.plots import plot_loss_curves
from landmarkflow.fileio import atomic_write_text
from landmarkflow.outages import tracking_step
from landmarkflow.registry import git_commit
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.steps.results import IngestResult, TrainResult
from landmarkflow.tracking import ensure_experiment, experiment_name
from landmarkflow.train.checkpoint import load_state
from landmarkflow.train.distributed import MONITOR_INTERVAL_S
from landmarkflow.train.durable import CONFIG_HASH_TAG, RESUME_KEY_TAG, check_resume_key, fetch_checkpoints, find_run
from landmarkflow.train.torchrun import run_launcher

log = logging.getLogger(__name__)
MODEL_DIR = "checkpoint"
"""The run's artifact folder for the trained model.pt."""
TRAIN_SECONDS = "train_seconds"
"""Logged last, once model.pt is in the run: a run that has it has finished training."""


def _flat_params(config: ExperimentConfig) -> dict[str, str]:
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = str(value)

    walk("", config.to_dict())
    return flat


@tracking_step
def train(
    config_path: str | Path,
    ingested: IngestResult,
    out_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    nproc: int = 1,
    resume_key: str | None = None,
) -> TrainResult:
    """Open an MLflow run for the experiment and train in it (DDP through torchrun when nproc > 1).

    With `resume_key` (the same for every attempt of one pipeline task), the run is tagged with it, and a step
    started again with that key and config continues the earlier attempt's run from its last uploaded checkpoint
    (its per-epoch metrics go on, no second run). If that run already finished training, its result is returned
    as it is, with no training: an attempt that died after training, e.g. while handing its outputs over, is
    completed rather than repeated. A new key trains anew.
    """
    config = load_config(config_path, overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    experiment_id = ensure_experiment(experiment_name(ingested.dataset))
    client = MlflowClient()
    earlier = find_run(client, experiment_id, resume_key, config.config_hash()) if resume_key else None
    if earlier is not None and TRAIN_SECONDS in earlier.data.metrics:
        log.info("run %s (resume key %s) has finished training; returning it", earlier.info.run_id, resume_key)
        return _finished(client, earlier.info.run_id, config, config_path, ingested, out_dir)
    if earlier is not None:
        run_id = earlier.info.run_id
        fetched = fetch_checkpoints(client, run_id, out_dir)
        client.update_run(run_id, status="RUNNING")
        where = "from its last uploaded checkpoint" if fetched else "from the start: it uploaded no checkpoint"
        log.info("continuing run %s (resume key %s) %s", run_id, resume_key, where)
    else:
        run_id = _start_run(client, experiment_id, config, config_path, ingested, out_dir, resume_key)
    started = time.perf_counter()
    try:
        _launch_training(config, config_path, overrides or {}, ingested, out_dir, run_id, nproc)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    seconds = time.perf_counter() - started
    history = load_state(out_dir / CHECKPOINT_FILE)["history"]
    plot = plot_loss_curves(history, out_dir / "loss_curves.png")
    client.log_artifact(run_id, str(plot), "plots")
    client.log_artifact(run_id, str(out_dir / CHECKPOINT_FILE), MODEL_DIR)
    client.log_metric(run_id, TRAIN_SECONDS, seconds)
    return _result(run_id, config, config_path, ingested, out_dir, seconds, history)


def _start_run(
    client: MlflowClient,
    experiment_id: str,
    config: ExperimentConfig,
    config_path: str | Path,
    ingested: IngestResult,
    out_dir: Path,
    resume_key: str | None,
) -> str:
    """A new run with the lineage tags (and the resume key), the flattened config as params and the config files."""
    tags = {
        "model": config.model.name,
        "dataset": ingested.dataset,
        CONFIG_HASH_TAG: config.config_hash(),
        "data_hash": ingested.data_hash,
        "git_commit": git_commit(),
    }
    if resume_key:
        tags[RESUME_KEY_TAG] = check_resume_key(resume_key)
    run_id = client.create_run(experiment_id, run_name=config.name, tags=tags).info.run_id
    client.log_batch(run_id, params=[Param(key, value[:6000]) for key, value in _flat_params(config).items()])
    resolved = out_dir / "config.json"
    atomic_write_text(resolved, json.dumps(config.to_dict(), indent=2))
    client.log_artifact(run_id, str(config_path), "config")
    client.log_artifact(run_id, str(resolved), "config")
    return run_id


def _finished(
    client: MlflowClient,
    run_id: str,
    config: ExperimentConfig,
    config_path: str | Path,
    ingested: IngestResult,
    out_dir: Path,
) -> TrainResult:
    """The result of a run that finished training, its model.pt fetched into `out_dir`."""
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".fetch-") as folder:
        fetched = client.download_artifacts(run_id, f"{MODEL_DIR}/{CHECKPOINT_FILE}", folder)
        os.replace(fetched, out_dir / CHECKPOINT_FILE)
    history = load_state(out_dir / CHECKPOINT_FILE)["history"]
    seconds = client.get_run(run_id).data.metrics[TRAIN_SECONDS]
    return _result(run_id, config, config_path, ingested, out_dir, seconds, history)


def _result(
    run_id: str,
    config: ExperimentConfig,
    config_path: str | Path,
    ingested: IngestResult,
    out_dir: Path,
    seconds: float,
    history: dict[str, list[float]],
) -> TrainResult:
    val = history["val_nme"][-1] if history["val_nme"] else float("nan")
    return TrainResult(
        run_id=run_id,
        checkpoint=str(out_dir / CHECKPOINT_FILE),
        config_path=str(Path(config_path).resolve()),
        config_hash=config.config_hash(),
        model=config.model.name,
        dataset=ingested.dataset,
        data_hash=ingested.data_hash,
        manifest=ingested.manifest,
        root=ingested.root,
        seconds=seconds,
        final_val_nme=float(val),
        config=config.to_dict(),
        data_remote=ingested.data_remote,
        root_in_version=ingested.root_in_version,
    )


def _launch_training(
    config: ExperimentConfig,
    config_path: str | Path,
    overrides: dict[str, Any],
    ingested: IngestResult,
    out_dir: Path,
    run_id: str,
    nproc: int,
) -> None:
    """Train in this process, or under torchrun, whose ranks load the config from its file and overrides."""
    if nproc <= 1:
        from landmarkflow.train.run import fit_from_manifest

        fit_from_manifest(config, Path(ingested.manifest), Path(ingested.root), out_dir, run_id)
        return
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--standalone",
        "--max-restarts=0",
        f"--monitor-interval={MONITOR_INTERVAL_S}",
        "-m",
        "landmarkflow.train",
        "--config",
        str(config_path),
        "--manifest",
        ingested.manifest,
        "--root",
        ingested.root,
        "--out",
        str(out_dir),
        "--run-id",
        run_id,
        "--overrides",
        json.dumps(overrides),
    ]
    run_launcher(command)
