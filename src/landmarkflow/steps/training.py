"""The train step: an MLflow run for the experiment, training in it: in this process, under torchrun (DDP) when
nproc > 1, or on several nodes through a Kubeflow Trainer TrainJob when nodes > 1."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig, load_config
from landmarkflow.fileio import atomic_write_text
from landmarkflow.outages import tracking_step
from landmarkflow.registry import GIT_COMMIT_TAG, git_commit
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.services import secret_name
from landmarkflow.steps.results import IngestResult, TrainResult, require_same_manifest
from landmarkflow.threads import env_sharing_threads
from landmarkflow.tracking import ensure_experiment, experiment_name
from landmarkflow.train.checkpoint import BEST, LAST, kept_val_nme, load_state
from landmarkflow.train.distributed import share_of_batch
from landmarkflow.train.durable import CONFIG_HASH_TAG, RESUME_KEY_TAG, check_resume_key, fetch_checkpoints, find_run
from landmarkflow.train.finish import MODEL_DIR, TRAIN_SECONDS, finish_run
from landmarkflow.train.launch import NodeGroup, torchrun_command, train_args
from landmarkflow.train.torchrun import run_launcher

if TYPE_CHECKING:
    from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

log = logging.getLogger(__name__)


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
    nodes: int = 1,
    image: str | None = None,
) -> TrainResult:
    """Open an MLflow run for the experiment and train in it (DDP through torchrun when nproc > 1).

    With `nodes` > 1 it trains on that many nodes of `nproc` GPUs each (0: CPUs) through a Kubeflow Trainer TrainJob
    whose pods run `image` and get their services from the Secret this step was given (`services.secret_name`); the
    step waits for the job and fails with its reason when it fails. The job's node that held rank 0 finishes the run.

    With `resume_key` (the same for every attempt of one pipeline task), the run is tagged with it, and a step
    started again with that key and config continues the earlier attempt's run from its last uploaded checkpoint
    (its per-epoch metrics go on, no second run). If that run already finished training, its result is returned
    as it is, with no training: an attempt that died after training, e.g. while handing its outputs over, is
    completed rather than repeated. A new key trains anew.
    """
    config = load_config(config_path, overrides)
    require_trainable(config, ingested, processes=max(nproc, 1) * max(nodes, 1))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (LAST, BEST):  # an earlier run's, in a reused folder; this run's own come back from MLflow
        (out_dir / stale).unlink(missing_ok=True)
    experiment_id = ensure_experiment(experiment_name(ingested.dataset))
    client = MlflowClient()
    earlier = find_run(client, experiment_id, resume_key, config.config_hash()) if resume_key else None
    if earlier is not None and earlier.data.tags.get("data_hash") != ingested.data_hash:
        raise ValueError(
            f"resume key {resume_key!r}: run {earlier.info.run_id} of this config trained on data "
            f"{earlier.data.tags.get('data_hash')}, not on the data given ({ingested.data_hash}); give a new key"
        )
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
        if nodes > 1:
            from landmarkflow.image import image as default_image
            from landmarkflow.trainjob.owner import pod_owner
            from landmarkflow.trainjob.submit import run_trainjob

            owner, image = pod_owner(), image or default_image()
            job = _trainjob(client, run_id, config, config_path, overrides, ingested, nodes, nproc, image, owner=owner)
            run_trainjob(job)
            return _finished(client, run_id, config, config_path, ingested, out_dir)
        _launch_training(config, config_path, overrides or {}, ingested, out_dir, run_id, nproc)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    seconds = time.perf_counter() - started
    state = finish_run(client, run_id, out_dir, seconds)
    return _result(run_id, config, config_path, ingested, out_dir, seconds, kept_val_nme(state))


def trainjob(
    config_path: str | Path,
    ingested: IngestResult,
    nodes: int,
    gpus_per_node: int,
    image: str,
    secret: str,
    overrides: dict[str, Any] | None = None,
) -> TrainerV1alpha1TrainJob:
    """The TrainJob that trains `config_path` (as the image holds it) on `nodes` nodes of `gpus_per_node` GPUs each,
    for a user to apply without the pipeline: it opens the MLflow run the job trains in, with the lineage tags, and
    puts the data's whereabouts into it. The nodes finish the run; evaluate it from there."""
    config = load_config(config_path, overrides)
    require_trainable(config, ingested, processes=max(gpus_per_node, 1) * nodes)
    experiment_id = ensure_experiment(experiment_name(ingested.dataset))
    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="landmarkflow-trainjob-") as folder:
        run_id = _start_run(client, experiment_id, config, config_path, ingested, Path(folder), None)
    return _trainjob(client, run_id, config, config_path, overrides, ingested, nodes, gpus_per_node, image, secret)


def _trainjob(
    client: MlflowClient,
    run_id: str,
    config: ExperimentConfig,
    config_path: str | Path,
    overrides: dict[str, Any] | None,
    ingested: IngestResult,
    nodes: int,
    gpus_per_node: int,
    image: str,
    secret: str | None = None,
    owner: dict[str, Any] | None = None,
) -> TrainerV1alpha1TrainJob:
    """The run's TrainJob, once the run holds the inputs its nodes fetch; owned by `owner` (the step's pod) if given."""
    from landmarkflow.train.inputs import log_training_inputs
    from landmarkflow.trainjob.spec import TrainJobRequest, build_trainjob, trainjob_name

    request = TrainJobRequest(
        name=trainjob_name(config.model.name, run_id),
        config_path=str(config_path),
        run_id=run_id,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        image=image,
        secret=secret or secret_name(),
        overrides=overrides or {},
        owner=owner,
    )
    job = build_trainjob(request)
    log_training_inputs(client, run_id, ingested)
    return job


def require_trainable(config: ExperimentConfig, ingested: IngestResult, processes: int) -> None:
    """ValueError before a run opens when the config cannot train on the ingested data in `processes` processes, or
    evaluate would find no faces to score after the whole training: the manifest the ingest wrote, faces in the
    train and test splits, the data's layout, and a global batch that the processes share evenly."""
    require_same_manifest(ingested)
    empty = [split for split in dict.fromkeys(("train", config.data.test_split)) if not ingested.counts.get(split)]
    if empty:
        raise ValueError(
            f"{ingested.manifest}: no faces in the {' and '.join(map(repr, empty))} split (it holds "
            f"{ingested.counts or 'none'}): training needs 'train' faces, and evaluation the config's "
            f"data.test_split, {config.data.test_split!r}"
        )
    if ingested.layout != config.data.layout:
        raise ValueError(
            f"{ingested.manifest}: {ingested.dataset} faces in the {ingested.layout}-point layout, but the config "
            f"{config.name!r} trains on layout {config.data.layout} (data.layout); use a config for that layout"
        )
    share_of_batch(config.train.batch_size, processes)


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
        GIT_COMMIT_TAG: git_commit(),
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
    val_nme = kept_val_nme(load_state(out_dir / CHECKPOINT_FILE))
    seconds = client.get_run(run_id).data.metrics[TRAIN_SECONDS]
    return _result(run_id, config, config_path, ingested, out_dir, seconds, val_nme)


def _result(
    run_id: str,
    config: ExperimentConfig,
    config_path: str | Path,
    ingested: IngestResult,
    out_dir: Path,
    seconds: float,
    val_nme: float,
) -> TrainResult:
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
        final_val_nme=val_nme,
        config=config.to_dict(),
        data_remote=ingested.data_remote,
        root_in_version=ingested.root_in_version,
        manifest_sha256=ingested.manifest_sha256,
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
    args = train_args(config_path, ingested.manifest, ingested.root, out_dir, run_id, overrides)
    run_launcher(torchrun_command(NodeGroup.single(nproc), args), env_sharing_threads(nproc))
