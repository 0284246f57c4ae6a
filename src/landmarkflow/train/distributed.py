"""The process group, read from the variables torchrun sets; a plain process is a world of one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

TIMEOUT_ENV = "LANDMARKFLOW_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0
"""How long a rank waits in a collective for the others before it fails, and with it the job. The others wait at the
end of every epoch while rank 0 validates and uploads its checkpoint, which rides out a tracking-server outage for up
to ~10 min a request (tracking.HttpRetryPolicy), so this is generous; it is what ends a job whose rank hangs (or dies
on another node, where this node's torchrun cannot see it) instead of leaving it waiting for ever."""


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, checkpoints and evaluates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistEnv:
    """Join the torchrun job if there is one (nccl on CUDA, gloo otherwise), else a world of one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=process_group_timeout())
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def process_group_timeout() -> timedelta:
    """The collective timeout: TIMEOUT_ENV's seconds where set, else DEFAULT_TIMEOUT_S; ValueError naming the
    variable if it is not a positive number."""
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return timedelta(seconds=seconds)


def rank_batch_size(global_batch: int, env: DistEnv) -> int:
    """Each rank's share of the global batch `train.batch_size`; ValueError if it does not divide evenly (DDP's
    gradient average weighs every rank alike, so unequal shares would weigh faces unequally)."""
    return share_of_batch(global_batch, env.world_size)


def share_of_batch(global_batch: int, processes: int) -> int:
    """`rank_batch_size` for `processes` processes, for a launcher to check before it starts them."""
    if global_batch % processes:
        raise ValueError(
            f"train.batch_size {global_batch} is the global batch and must divide evenly over the "
            f"{processes} training processes (each loads batch_size / processes faces a step)"
        )
    return global_batch // processes


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op in a world of one)."""
    if env.distributed:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    """Leave the process group cleanly."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def mean_across_ranks(value: float, env: DistEnv) -> float:
    """Average a scalar over ranks (for the logged epoch loss)."""
    if not env.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=env.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / env.world_size
