"""`python -m landmarkflow.train.node`: what every pod of a multi-node TrainJob runs (`launch.node_command`).

A node shares nothing with the step that created the job but the tracking server and the DVC remote. It reads the
ingest record and manifest from the training's MLflow run, fetches the train split by its data hash and the run's
checkpoints (a job started again resumes), then runs the torchrun line as one node of the group Trainer describes
in PET_*. The node whose processes included rank 0 holds model.pt afterwards, and finishes the run with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from landmarkflow.threads import env_sharing_threads
from landmarkflow.train.launch import TRAINER_ENV, NodeGroup, torchrun_command, train_args
from landmarkflow.train.torchrun import run_launcher

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One node of a multi-node training (a TrainJob pod).")
    parser.add_argument("--config", type=Path, required=True, help="Experiment config (a path inside the image).")
    parser.add_argument("--run-id", required=True, help="The MLflow run that holds the inputs and gets the model.")
    parser.add_argument("--overrides", default="{}", help="JSON object of dotted config keys")
    args = parser.parse_args(argv)
    config_path = args.config.resolve()  # relative to the image's working directory, which the node leaves
    group = NodeGroup.from_trainer_env(os.environ, rendezvous_id=args.run_id)

    from mlflow.tracking import MlflowClient

    from landmarkflow.data.manifest import TRAIN_SPLIT
    from landmarkflow.runtime import CHECKPOINT_FILE
    from landmarkflow.services import start_step
    from landmarkflow.steps.materialising import materialise_data
    from landmarkflow.train.durable import fetch_checkpoints
    from landmarkflow.train.finish import finish_run
    from landmarkflow.train.inputs import fetch_training_inputs

    scratch = start_step()
    client = MlflowClient()
    ingested = fetch_training_inputs(client, args.run_id, scratch / "inputs")
    local = materialise_data(ingested, [TRAIN_SPLIT], scratch / "data")
    out_dir = scratch / "train"
    fetch_checkpoints(client, args.run_id, out_dir)
    command = torchrun_command(
        group,
        train_args(config_path, local.manifest, local.root, out_dir, args.run_id, json.loads(args.overrides)),
    )
    log.info("node of %d x %d processes, rendezvous at %s", group.nnodes, group.nproc_per_node, group.endpoint)
    started = time.perf_counter()
    ranks_env = env_sharing_threads(group.nproc_per_node)
    run_launcher(command, env={k: v for k, v in ranks_env.items() if k not in TRAINER_ENV})
    if (out_dir / CHECKPOINT_FILE).is_file():
        finish_run(client, args.run_id, out_dir, time.perf_counter() - started)
        log.info("held rank 0: model.pt and train_seconds logged to run %s", args.run_id)


if __name__ == "__main__":
    main()
