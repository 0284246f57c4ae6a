"""What each DDP rank trains on, from the sampler and batch split the trainer uses: per epoch, disjoint equal shards
that cover the epoch but its remainder, and per step, ranks whose batches together are one process's batch."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from landmarkflow.data.dataset import shard_sampler
from landmarkflow.train.distributed import DistEnv, rank_batch_size

SEED = 11


def _env(rank: int, world_size: int) -> DistEnv:
    return DistEnv(rank=rank, local_rank=rank, world_size=world_size, device=torch.device("cpu"))


def _shards(faces: int, world_size: int, epoch: int) -> list[list[int]]:
    shards = []
    for rank in range(world_size):
        sampler = shard_sampler(list(range(faces)), world_size, rank, SEED)
        sampler.set_epoch(epoch)
        assert all(drawn_epoch == epoch for drawn_epoch, _ in sampler)
        shards.append([index for _, index in sampler])
    return shards


@pytest.mark.parametrize("faces", [12, 13, 14, 15])
@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_see_disjoint_equal_shards_that_cover_the_epoch_but_its_last_few(faces: int, world_size: int) -> None:
    """The remainder (faces % world_size) sits the epoch out: the last faces of that epoch's shuffled order, a
    different few each epoch, where repeating them on another rank would give those faces twice the weight."""
    left_out = []
    for epoch in range(4):
        (order,) = _shards(faces, 1, epoch)
        assert sorted(order) == list(range(faces))
        shards = _shards(faces, world_size, epoch)
        assert {len(shard) for shard in shards} == {faces // world_size}
        seen = [index for shard in shards for index in shard]
        assert len(set(seen)) == len(seen)
        remainder = faces - faces // world_size * world_size
        assert sorted(seen) == sorted(order[: faces - remainder])
        left_out.append(order[faces - remainder :])
    assert (faces % world_size == 0) == (left_out == [[]] * 4)
    if faces % world_size:
        assert len({tuple(faces) for faces in left_out}) > 1


@pytest.mark.parametrize("faces", [16, 17, 22])
def test_each_step_the_ranks_batches_together_are_the_single_process_batch(faces: int) -> None:
    """With the global batch split over 2 ranks, step k of every rank draws from the faces of one process's step k,
    and the epochs have the same number of steps (each loader dropping its last partial batch)."""
    global_batch = 4
    for epoch in range(3):
        (order,) = _shards(faces, 1, epoch)
        single = [order[start : start + global_batch] for start in range(0, faces - global_batch + 1, global_batch)]
        per_rank = []
        for rank in range(2):
            sampler = shard_sampler(list(range(faces)), 2, rank, SEED)
            sampler.set_epoch(epoch)
            loader = DataLoader(
                [index for _, index in sampler], batch_size=rank_batch_size(global_batch, _env(rank, 2)), drop_last=True
            )
            per_rank.append([batch.tolist() for batch in loader])
        assert [sorted(a + b) for a, b in zip(*per_rank, strict=True)] == [sorted(batch) for batch in single]


def test_a_global_batch_that_does_not_split_evenly_over_the_ranks_is_refused() -> None:
    assert rank_batch_size(16, _env(0, 1)) == 16
    assert rank_batch_size(16, _env(1, 4)) == 4
    with pytest.raises(ValueError, match=r"train.batch_size 15 is the global batch .* 2 training processes"):
        rank_batch_size(15, _env(0, 2))
