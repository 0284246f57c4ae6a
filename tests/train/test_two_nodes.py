"""Two nodes on loopback run the very command a TrainJob's pods run, and train what one node of two processes does.

Each "node" is a separate process started with the container command of the TrainJob `steps.trainjob` builds and
the environment Kubeflow Trainer's torch runtime gives a pod (PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK,
PET_MASTER_ADDR, PET_MASTER_PORT), here pointing at a c10d rendezvous on 127.0.0.1. Like pods, the nodes share
nothing but the tracking store (which holds the run's inputs) and the DVC remote (a folder) they fetch the images
from. One process per node with gloo is the same world of two, with the same global batch, as the single-node run
with two processes, so the two must end with the same weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow import steps
from landmarkflow.data.synthetic import synthesize
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.train.checkpoint import load_state
from landmarkflow.train.finish import MODEL_DIR, TRAIN_SECONDS
from landmarkflow.trainjob.spec import RUN_LABEL
from pipelines.local_services import free_ports
from tests.fakes import DOTS_HIH

REPO = Path(__file__).resolve().parents[2]
CONFIG = "configs/hih_synthetic_tiny.yaml"
TINY = {
    **{f"model.{key}": DOTS_HIH[key] for key in ("channels", "hourglass_depth", "decimal_channels")},
    "train.epochs": 2,
    "train.batch_size": 2,
    "train.num_workers": 0,
    "eval.batch_size": 8,
    "data.val_fraction": 0.25,
}
NODE_TIMEOUT_S = 300
WEIGHT_TOLERANCE = 1e-6
"""Both runs reduce the same two gradients with gloo in the same order: they agree to float32 rounding."""


def trainer_env(node_rank: int, port: int) -> dict[str, str]:
    """A pod's environment as Trainer's torch plugin sets it, `python` being this interpreter. One thread per
    process, as torchrun gives each of the single-node run's two: the same kernels sum in the same order."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        **os.environ,
        "PATH": path,
        "OMP_NUM_THREADS": "1",
        "PET_NNODES": "2",
        "PET_NPROC_PER_NODE": "1",
        "PET_NODE_RANK": str(node_rank),
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": str(port),
    }


@pytest.mark.slow
def test_two_nodes_on_loopback_train_as_one_node_of_two_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the single-node ranks too, whatever the session's environment holds
    synthesize(tmp_path / "faces", num_train=12, num_test=2, seed=3, image_size=128, progress=False)
    ingested = steps.ingest(
        "synthetic", tmp_path / "faces", tmp_path / "manifest.parquet", remote=str(tmp_path / "remote")
    )
    single = steps.train(CONFIG, ingested, tmp_path / "single", TINY, nproc=2)

    job = steps.trainjob(
        CONFIG, ingested, nodes=2, gpus_per_node=0, image="landmarkflow:test", secret="s", overrides=TINY
    )
    command, run_id = job.spec.trainer.command, job.metadata.labels[RUN_LABEL]
    (port,) = free_ports(1)
    nodes = [
        subprocess.Popen(
            command, cwd=REPO, env=trainer_env(rank, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=NODE_TIMEOUT_S)[0].decode(errors="replace") for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    for rank, (node, output) in enumerate(zip(nodes, outputs, strict=True)):
        assert node.returncode == 0, f"node {rank}:\n{output[-4000:]}"

    client = MlflowClient()
    assert TRAIN_SECONDS in client.get_run(run_id).data.metrics
    two_nodes = load_state(Path(client.download_artifacts(run_id, f"{MODEL_DIR}/{CHECKPOINT_FILE}", str(tmp_path))))
    one_node = load_state(Path(single.checkpoint))
    assert two_nodes["history"]["train_loss"] == pytest.approx(one_node["history"]["train_loss"], abs=1e-6)
    for name, weight in one_node["model"].items():
        torch.testing.assert_close(
            two_nodes["model"][name], weight, atol=WEIGHT_TOLERANCE, rtol=0, msg=lambda m, name=name: f"{name}: {m}"
        )
