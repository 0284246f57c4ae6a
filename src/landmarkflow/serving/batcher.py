"""Concurrent requests' crops into one model call: a worker thread gathers what arrives within a few ms.

One onnxruntime call on 8 crops costs far less than 8 calls on one (its threads get whole batches to split), so
under load the server answers more requests per second at the price of at most `max_wait_s` of added latency.
The queue of waiting requests is bounded: past it a request is refused at once (the server says busy) instead of
piling up memory and latency.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from landmarkflow.models.crop_predictor import CropPredictor

log = logging.getLogger(__name__)


class BatcherBusy(RuntimeError):
    """More requests are waiting than the batcher holds."""


@dataclass(frozen=True)
class _Job:
    crops: np.ndarray
    done: Future[np.ndarray]


class CropBatcher:
    """Runs `predict` on the crops of every job that arrives within `max_wait_s` of the first, up to `max_batch`
    crops in one call (a job larger than that runs alone, in calls of `max_batch`: a group photo's many faces never
    make one call larger than the bound); each job gets its own rows of the answer."""

    def __init__(
        self, predict: CropPredictor, max_batch: int = 32, max_wait_s: float = 0.005, max_pending: int = 256
    ) -> None:
        if max_batch < 1 or max_wait_s < 0 or max_pending < 1:
            raise ValueError(
                f"batcher: expected max_batch >= 1, max_wait_s >= 0, max_pending >= 1; got {max_batch}, "
                f"{max_wait_s}, {max_pending}"
            )
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_pending)
        self.worker = threading.Thread(target=self._run, name="crop-batcher", daemon=True)
        self.worker.start()

    @property
    def alive(self) -> bool:
        return self.worker.is_alive()

    def submit(self, crops: np.ndarray) -> Future[np.ndarray]:
        """The future (N, K, 2) answer for (N, 3, S, S) crops; BatcherBusy when the queue is full."""
        job = _Job(crops, Future())
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise BatcherBusy(f"{self.jobs.maxsize} requests are already waiting for the model") from None
        return job.done

    def close(self) -> None:
        """Finish the jobs already queued, then stop the worker."""
        self.jobs.put(None)
        self.worker.join()

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """`first` and the jobs that arrive within max_wait_s while the batch has room; and whether close() came."""
        batch, count = [first], len(first.crops)
        deadline = time.monotonic() + self.max_wait_s
        while count < self.max_batch:
            try:
                job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return batch, True
            if count + len(job.crops) > self.max_batch:
                self._run_batch(batch)  # the newcomer does not fit: what is gathered goes first
                batch, count, deadline = [], 0, time.monotonic() + self.max_wait_s
            batch.append(job)
            count += len(job.crops)
        return batch, False

    def _run(self) -> None:
        closing = False
        while not closing:
            first = self.jobs.get()
            if first is None:
                return
            batch, closing = self._gather(first)
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Job]) -> None:
        """One model call for the batch's jobs that still have a waiter; a request cancelled while it waited (a
        shutdown, a client's timeout) is dropped, not answered: answering it would raise in this worker and stop it."""
        batch = [job for job in batch if job.done.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            crops = np.concatenate([job.crops for job in batch])
            step = self.max_batch
            points = np.concatenate([self.predict(crops[i : i + step]) for i in range(0, len(crops), step)])
        except Exception as exc:  # every waiting request gets the error; the worker lives on
            log.exception("model call on %d request(s) failed", len(batch))
            for job in batch:
                job.done.set_exception(exc)
            return
        start = 0
        for job in batch:
            job.done.set_result(points[start : start + len(job.crops)])
            start += len(job.crops)
