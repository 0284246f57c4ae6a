"""CropBatcher: concurrent jobs share model calls, each gets its own rows, a failure reaches every waiter only."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from landmarkflow.serving.batcher import BatcherBusy, CropBatcher


def crops_of(value: float, count: int) -> np.ndarray:
    return np.full((count, 3, 4, 4), value, np.float32)


def test_concurrent_jobs_share_calls_and_get_their_own_rows() -> None:
    calls: list[int] = []

    def predict(crops: np.ndarray) -> np.ndarray:
        calls.append(len(crops))
        return np.repeat(crops[:, :1, :1, :2].reshape(len(crops), 1, 2), 3, axis=1)

    batcher = CropBatcher(predict, max_batch=8, max_wait_s=0.05)
    with ThreadPoolExecutor(12) as pool:
        futures = list(pool.map(lambda i: batcher.submit(crops_of(i, 1 + i % 3)), range(12)))
    for i, future in enumerate(futures):
        assert future.result(timeout=10).shape == (1 + i % 3, 3, 2)
        assert (future.result() == i).all()
    assert sum(calls) == sum(1 + i % 3 for i in range(12)) and max(calls) <= 8 and len(calls) < 12
    alone = batcher.submit(np.concatenate([crops_of(v, 1) for v in range(20)])).result(timeout=10)
    assert calls[-3:] == [8, 8, 4]  # larger than max_batch: calls of its own, none larger than the bound
    assert np.array_equal(alone[:, 0, 0], np.arange(20))  # each row the answer to its own crop
    batcher.close()
    assert not batcher.alive


def test_a_failed_call_fails_its_jobs_and_the_worker_goes_on() -> None:
    def predict(crops: np.ndarray) -> np.ndarray:
        if (crops < 0).any():
            raise ValueError("negative pixels")
        return np.zeros((len(crops), 1, 2), np.float32)

    batcher = CropBatcher(predict, max_wait_s=0.0)
    with pytest.raises(ValueError, match="negative pixels"):
        batcher.submit(crops_of(-1, 1)).result(timeout=10)
    assert batcher.submit(crops_of(1, 2)).result(timeout=10).shape == (2, 1, 2)
    batcher.close()


def test_a_full_queue_refuses_at_once() -> None:
    release = threading.Event()

    def predict(crops: np.ndarray) -> np.ndarray:
        release.wait(10)
        return np.zeros((len(crops), 1, 2), np.float32)

    batcher = CropBatcher(predict, max_batch=1, max_wait_s=0.0, max_pending=2)
    running = batcher.submit(crops_of(0, 1))
    while not batcher.jobs.empty():  # the worker took the first job and waits in predict
        threading.Event().wait(0.01)
    waiting = [batcher.submit(crops_of(0, 1)) for _ in range(2)]
    with pytest.raises(BatcherBusy, match="2 requests are already waiting"):
        batcher.submit(crops_of(0, 1))
    release.set()
    assert all(f.result(timeout=10).shape == (1, 1, 2) for f in [running, *waiting])
    batcher.close()


def test_a_request_cancelled_while_it_waits_is_dropped_and_the_worker_goes_on() -> None:
    release = threading.Event()

    def predict(crops: np.ndarray) -> np.ndarray:
        release.wait(10)
        return np.full((len(crops), 1, 2), crops[0, 0, 0, 0], np.float32)

    batcher = CropBatcher(predict, max_batch=1, max_wait_s=0.0)
    running = batcher.submit(crops_of(1, 1))
    while not batcher.jobs.empty():  # the worker took the first job and waits in predict
        threading.Event().wait(0.01)
    cancelled, kept = batcher.submit(crops_of(2, 1)), batcher.submit(crops_of(3, 1))
    assert cancelled.cancel()
    release.set()
    assert running.result(timeout=10)[0, 0, 0] == 1 and kept.result(timeout=10)[0, 0, 0] == 3
    assert batcher.alive and batcher.submit(crops_of(4, 1)).result(timeout=10)[0, 0, 0] == 4
    batcher.close()
