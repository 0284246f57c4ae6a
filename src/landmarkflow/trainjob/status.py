"""Waiting for a TrainJob: what its conditions say, and a wait that ends in success, its reason for failing, a
deadline, or a Kubernetes API gone for longer than the wait tolerates; SIGTERM during the wait deletes the job.

Plain functions over the TrainJob as the API returns it (a dict), read through the `kubeflow-trainer-api` models,
so that they are tested on constructed statuses; `trainjob.submit` does the talking to the cluster.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

log = logging.getLogger(__name__)

COMPLETE = "Complete"
FAILED = "Failed"
"""The condition types Trainer sets when a TrainJob ends (kubeflow/trainer, pkg/apis/trainer/v1alpha1)."""


class TrainJobFailed(RuntimeError):
    """The TrainJob ended Failed; the message carries its condition's reason and message."""


class KubernetesUnreachable(ConnectionError):
    """The Kubernetes API failed every read for longer than a wait tolerates."""


@dataclass(frozen=True)
class Outcome:
    """How a TrainJob ended."""

    succeeded: bool
    reason: str
    message: str

    def describe(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


def outcome(job: Mapping[str, Any]) -> Outcome | None:
    """How the job ended, from its conditions; None while it has not (created, running, suspended)."""
    status = TrainerV1alpha1TrainJob.from_dict(dict(job)).status
    for condition in (status.conditions or []) if status else []:
        if condition.status == "True" and condition.type in (COMPLETE, FAILED):
            return Outcome(condition.type == COMPLETE, condition.reason, condition.message)
    return None


@dataclass(frozen=True)
class WaitPolicy:
    """How long to wait for a job, how often to look, and how long the API may be gone in between."""

    timeout_s: float = 7 * 24 * 3600
    poll_s: float = 30.0
    outage_s: float = 300.0


DEFAULT_WAIT = WaitPolicy()
DELETE_ON_SIGTERM_S = 10.0
"""How long a wait that SIGTERM ended tries to delete its job: well within the 30 s a pod has to stop by default."""
SIGTERM_EXIT = 128 + signal.SIGTERM
"""The exit status of a process that SIGTERM ended, as a shell reports it."""


class WaitTerminated(BaseException):
    """SIGTERM during a wait; a BaseException, as KeyboardInterrupt is, so that no `except Exception` on its way (the
    wait's own handling of a failed read) takes it for an error and waits on."""


def wait_for_trainjob(
    name: str,
    read: Callable[[], Mapping[str, Any]],
    transient: Callable[[Exception], bool],
    policy: WaitPolicy = DEFAULT_WAIT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Read the job every `poll_s` until it ends: its Outcome when it completed; TrainJobFailed with its reason
    when it failed; TimeoutError after `timeout_s`; KubernetesUnreachable when `read` failed with errors that
    `transient` accepts for `outage_s` on end (any other error from `read` is raised as it is)."""
    started = clock()
    gone_since: float | None = None
    while True:
        try:
            job = read()
        except Exception as exc:
            if not transient(exc):
                raise
            now = clock()
            gone_since = now if gone_since is None else gone_since
            if now - gone_since >= policy.outage_s:
                raise KubernetesUnreachable(
                    f"Kubernetes API: every read of TrainJob {name} failed for {now - gone_since:.0f} s "
                    f"(tolerated: {policy.outage_s:.0f} s); last error: {exc}"
                ) from exc
            log.warning("TrainJob %s: reading it failed (%s); trying again", name, exc)
        else:
            gone_since = None
            ended = outcome(job)
            if ended is not None and not ended.succeeded:
                raise TrainJobFailed(f"TrainJob {name} failed: {ended.describe()}")
            if ended is not None:
                return ended
        if clock() - started >= policy.timeout_s:
            raise TimeoutError(f"TrainJob {name} has not finished after {policy.timeout_s:.0f} s")
        sleep(policy.poll_s)


@contextmanager
def deleted_on_sigterm(name: str, delete: Callable[[], None], timeout_s: float = DELETE_ON_SIGTERM_S) -> Iterator[None]:
    """Within the block, SIGTERM ends it, deletes the job through `delete` (given at most `timeout_s`) and exits with
    SIGTERM_EXIT. SIGTERM is what the kubelet sends first when the waiting pod is deleted, e.g. its run cancelled;
    by default it would end the process at once and leave the job's nodes training for no one. Python takes signal
    handlers in the main thread only: elsewhere the block runs without one (the job's owner pod still takes it along).
    """

    def terminated(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one deletion: a second SIGTERM must not cut it short
        raise WaitTerminated

    if threading.current_thread() is not threading.main_thread():
        log.info("TrainJob %s: waited for outside the main thread, so SIGTERM does not delete it", name)
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    except WaitTerminated:
        log.warning("TrainJob %s: SIGTERM while waiting for it (run cancelled or pod stopped); deleting it", name)
        failure = _run_within(delete, timeout_s)
        if failure:
            log.warning(
                "TrainJob %s: not deleted (%s); Kubernetes deletes it with its owner pod, if any", name, failure
            )
        else:
            log.warning("TrainJob %s deleted", name)
        raise SystemExit(SIGTERM_EXIT) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_within(action: Callable[[], None], timeout_s: float) -> str:
    """Run `action` in a daemon thread for at most `timeout_s` (a hung API call must not outlast the pod's grace
    period): "" when it returned, else why not."""
    failure = [f"no answer within {timeout_s:g} s"]

    def run() -> None:
        try:
            action()
            failure[0] = ""
        except Exception as exc:
            failure[0] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=run, name="trainjob-delete", daemon=True)
    worker.start()
    worker.join(timeout_s)
    return failure[0]
