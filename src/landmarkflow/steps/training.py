"""The train step: an MLflow run for the experiment, training in it (DDP through torchrun when nproc > 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
) -> TrainResult:
    """Open an MLflow run for the experiment and train in it (DDP through torchrun when nproc > 1)."""
    config = load_config(config_path, overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    experiment_id = ensure_experiment(experiment_name(ingested.dataset))
    client = MlflowClient()
    run = client.create_run(
        experiment_id,
        run_name=config.name,
        tags={
            "model": config.model.name,
            "dataset": ingested.dataset,
            "config_hash": config.config_hash(),
            "data_hash": ingested.data_hash,
            "git_commit": git_commit(),
        },
    )
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(key, value[:6000]) for key, value in _flat_params(config).items()])
    resolved = out_dir / "config.json"
    atomic_write_text(resolved, json.dumps(config.to_dict(), indent=2))
    client.log_artifact(run_id, str(config_path), "config")
    client.log_artifact(run_id, str(resolved), "config")
    started = time.perf_counter()
    try:
        _launch_training(config, config_path, overrides or {}, ingested, out_dir, run_id, nproc)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    seconds = time.perf_counter() - started
    state = load_state(out_dir / CHECKPOINT_FILE)
    history = state["history"]
    plot = plot_loss_curves(history, out_dir / "loss_curves.png")
    client.log_artifact(run_id, str(plot), "plots")
    client.log_artifact(run_id, str(out_dir / CHECKPOINT_FILE), "checkpoint")
    client.log_metric(run_id, "train_seconds", seconds)
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
    subprocess.run(command, check=True, env=os.environ.copy())
