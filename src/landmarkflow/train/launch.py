"""The command lines of distributed training: the torchrun line one node runs, and the command of a TrainJob's pods.

One node alone (DDP over its GPUs) starts torchrun `--standalone`; each of several nodes starts the same line with
a c10d rendezvous instead, at the endpoint every node is given. A Kubeflow Trainer TrainJob on the torch-distributed
runtime tells each pod where it sits through PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR and
PET_MASTER_PORT (kubeflow/trainer, pkg/runtime/framework/plugins/torch); its pods run `node_command`, which turns
those into this same torchrun line (train/node.py). The loopback test runs that pod command as two nodes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAIN_MODULE = "landmarkflow.train"
"""What torchrun starts on every rank (train/__main__.py)."""
NODE_MODULE = "landmarkflow.train.node"
"""What every pod of a TrainJob runs (train/node.py)."""

RENDEZVOUS_JOIN_TIMEOUT_S = 600
"""Every node must join within this: a node that never starts (unschedulable, image pull failing) fails the job
instead of leaving the others waiting."""
RENDEZVOUS_READ_TIMEOUT_S = 120
"""One read of the rendezvous store: longer means the node hosting it is gone."""

MONITOR_INTERVAL_S = 0.5
"""How often torchrun checks its ranks: a rank that exits or is killed stops the others within about this long."""

TRAINER_ENV = ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT")
"""What Trainer's torch plugin sets in every pod. torchrun would also read any PET_<OPTION> itself as <OPTION>;
the node passes them as options instead (and hides them from torchrun), so each is read once, here."""


@dataclass(frozen=True)
class NodeGroup:
    """The nodes of one training and this node's place among them."""

    nnodes: int
    nproc_per_node: int
    endpoint: str | None = None
    """host:port of the c10d rendezvous; None for one node alone."""
    rendezvous_id: str = "landmarkflow"
    """The same on every node of one training, different across trainings."""

    @classmethod
    def single(cls, nproc_per_node: int) -> NodeGroup:
        return cls(nnodes=1, nproc_per_node=nproc_per_node)

    @classmethod
    def from_trainer_env(cls, env: Mapping[str, str], rendezvous_id: str) -> NodeGroup:
        """The group Trainer describes in `env`; ValueError naming the variable that is missing or not a number.
        Ranks come from the rendezvous, so the node rank is not needed here."""
        missing = [name for name in TRAINER_ENV if not env.get(name, "").strip()]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} not set: a TrainJob node learns its place in the group from the variables "
                f"Kubeflow Trainer's torch runtime sets ({', '.join(TRAINER_ENV)})"
            )
        numbers = {}
        for name in ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_MASTER_PORT"):
            value = env[name].strip()
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{name}={value!r}: expected a positive whole number")
            numbers[name] = int(value)
        return cls(
            nnodes=numbers["PET_NNODES"],
            nproc_per_node=numbers["PET_NPROC_PER_NODE"],
            endpoint=f"{env['PET_MASTER_ADDR'].strip()}:{numbers['PET_MASTER_PORT']}",
            rendezvous_id=rendezvous_id,
        )


def torchrun_command(group: NodeGroup, train_args: Sequence[str]) -> list[str]:
    """The line that starts this node's `group.nproc_per_node` training processes under torchrun."""
    rendezvous = [
        f"--rdzv-conf=join_timeout={RENDEZVOUS_JOIN_TIMEOUT_S},read_timeout={RENDEZVOUS_READ_TIMEOUT_S}",
        "--max-restarts=0",  # a failed rank fails the job; a retry resumes from the last uploaded checkpoint
        f"--monitor-interval={MONITOR_INTERVAL_S}",
    ]
    if group.endpoint is None:
        placement = ["--nnodes=1", "--standalone"]
    else:
        placement = [
            f"--nnodes={group.nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={group.endpoint}",
            f"--rdzv-id={group.rendezvous_id}",
        ]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={group.nproc_per_node}",
        *placement,
        *rendezvous,
        "-m",
        TRAIN_MODULE,
        *train_args,
    ]


def train_args(
    config_path: str | Path,
    manifest: str | Path,
    root: str | Path,
    out_dir: str | Path,
    run_id: str | None,
    overrides: Mapping[str, Any],
) -> list[str]:
    """The arguments of `python -m landmarkflow.train` on every rank."""
    args = ["--config", str(config_path), "--manifest", str(manifest), "--root", str(root), "--out", str(out_dir)]
    if run_id:
        args += ["--run-id", run_id]
    return [*args, "--overrides", json.dumps(dict(overrides), sort_keys=True)]


def node_command(config_path: str, run_id: str, overrides: Mapping[str, Any]) -> list[str]:
    """What each pod of a TrainJob runs: `python` of the image, the config path inside it, the MLflow run that
    holds the data's whereabouts and receives the model."""
    return [
        "python",
        "-m",
        NODE_MODULE,
        "--config",
        config_path,
        "--run-id",
        run_id,
        "--overrides",
        json.dumps(dict(overrides), sort_keys=True),
    ]
