"""The torchrun line of one node: standalone alone, a c10d rendezvous with explicit timeouts among several, and the
group a TrainJob pod learns from Trainer's PET_* variables."""

from __future__ import annotations

import sys

import pytest

from landmarkflow.train.launch import NodeGroup, node_command, torchrun_command

POD_ENV = {
    "PET_NNODES": "2",
    "PET_NPROC_PER_NODE": "4",
    "PET_NODE_RANK": "1",
    "PET_MASTER_ADDR": "hih-0123-node-0-0.hih-0123",
    "PET_MASTER_PORT": "29400",
}


def test_one_node_is_standalone() -> None:
    command = torchrun_command(NodeGroup.single(2), ["--config", "c.yaml"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert {"--nproc-per-node=2", "--nnodes=1", "--standalone"} <= set(command)
    assert command[-4:] == ["-m", "landmarkflow.train", "--config", "c.yaml"]


def test_a_pod_joins_a_c10d_rendezvous_at_the_master_with_timeouts() -> None:
    group = NodeGroup.from_trainer_env(POD_ENV, rendezvous_id="run1")
    assert group == NodeGroup(2, 4, "hih-0123-node-0-0.hih-0123:29400", "run1")
    command = torchrun_command(group, [])
    assert {
        "--nnodes=2",
        "--nproc-per-node=4",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=hih-0123-node-0-0.hih-0123:29400",
        "--rdzv-id=run1",
        "--max-restarts=0",
    } <= set(command)
    assert "--standalone" not in command
    assert any(arg.startswith("--rdzv-conf=join_timeout=") and "read_timeout=" in arg for arg in command)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"PET_MASTER_ADDR": ""}, "PET_MASTER_ADDR not set"),
        ({"PET_NPROC_PER_NODE": "auto"}, "PET_NPROC_PER_NODE='auto'"),
    ],
)
def test_a_pod_without_trainers_variables_says_which(change: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NodeGroup.from_trainer_env({**POD_ENV, **change}, rendezvous_id="run1")


def test_the_pod_command_runs_the_node_entry_in_the_images_python() -> None:
    command = node_command("configs/hih_300w.yaml", "run1", {"train.epochs": 3})
    assert command == [
        "python",
        "-m",
        "landmarkflow.train.node",
        "--config",
        "configs/hih_300w.yaml",
        "--run-id",
        "run1",
        "--overrides",
        '{"train.epochs": 3}',
    ]
