"""Waiting for a TrainJob, on statuses as the API returns them: it ends with the job, says why a job failed, and
outlasts a short API outage but not a long one. SIGTERM during the wait deletes the job and ends the process with
143, shown on a real process waiting on a job that runs on; the deletion is a function standing in for the API call
(no Kubernetes API here), and a deletion that hangs is given up on in time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from landmarkflow.trainjob.status import (
    SIGTERM_EXIT,
    KubernetesUnreachable,
    TrainJobFailed,
    WaitPolicy,
    deleted_on_sigterm,
    outcome,
    wait_for_trainjob,
)

REPO = Path(__file__).resolve().parents[2]

POLICY = WaitPolicy(timeout_s=3600, poll_s=30, outage_s=300)


def job(*conditions: tuple[str, str, str, str]) -> dict[str, Any]:
    """A TrainJob as `kubectl get -o json` shows it, with these (type, status, reason, message) conditions."""
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "hih-0123456789ab"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}},
        "status": {
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": "2026-11-30T10:00:00Z",
                }
                for kind, status, reason, message in conditions
            ]
        },
    }


RUNNING = {**job(), "status": {}}
COMPLETE = job(("Complete", "True", "JobsCompleted", "TrainJob is completed"))
FAILED = job(
    ("Suspended", "False", "Resumed", ""),
    ("Failed", "True", "FailedJobs", "jobset failed: node-0 exited with code 1 (RendezvousTimeoutError)"),
)


class Clock:
    """Time that passes only when the wait sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def wait(*answers: Mapping[str, Any] | Exception, clock: Clock | None = None) -> object:
    clock = clock or Clock()
    queue = list(answers)

    def read() -> Mapping[str, Any]:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return wait_for_trainjob("ns/hih", read, lambda exc: isinstance(exc, ConnectionError), POLICY, clock.sleep, clock)


def test_conditions_say_how_a_job_ended() -> None:
    assert outcome(RUNNING) is None
    assert outcome(job(("Suspended", "True", "Suspended", "queued"))) is None
    assert outcome(COMPLETE).succeeded
    failed = outcome(FAILED)
    assert not failed.succeeded and failed.reason == "FailedJobs"


def test_the_wait_ends_when_the_job_completes() -> None:
    assert wait(RUNNING, RUNNING, COMPLETE).succeeded


def test_a_failed_job_fails_the_wait_with_its_reason() -> None:
    with pytest.raises(TrainJobFailed, match=r"TrainJob ns/hih failed: FailedJobs: .*RendezvousTimeoutError"):
        wait(RUNNING, FAILED)


def test_a_short_api_outage_is_waited_out_a_long_one_names_the_api() -> None:
    gone = ConnectionError("connection refused")
    assert wait(RUNNING, gone, gone, RUNNING, COMPLETE).succeeded
    with pytest.raises(KubernetesUnreachable, match=r"Kubernetes API: every read of TrainJob ns/hih failed for 300 s"):
        wait(RUNNING, *[gone] * 11)


def test_an_error_that_is_not_an_outage_is_raised_at_once() -> None:
    with pytest.raises(PermissionError):
        wait(RUNNING, PermissionError("trainjobs is forbidden"))


def test_the_wait_has_a_deadline() -> None:
    with pytest.raises(TimeoutError, match="has not finished after 3600 s"):
        wait(*[RUNNING] * 200)


WAITER = """
import json, sys, time
from pathlib import Path
from landmarkflow.logs import configure_logging
from landmarkflow.trainjob.status import WaitPolicy, deleted_on_sigterm, wait_for_trainjob

folder, running, deletion = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
configure_logging()

def read():
    (folder / "waiting").touch()
    return running

def delete():
    if deletion == "hangs":
        time.sleep(3600)
    (folder / "deleted").write_text("ns/hih")

with deleted_on_sigterm("ns/hih", delete, timeout_s=2.0):
    wait_for_trainjob("ns/hih", read, lambda exc: False, WaitPolicy(timeout_s=600, poll_s=0.05))
"""
"""A step's wait, as `submit.run_trainjob` makes it, on a job that never ends."""


@pytest.mark.parametrize("deletion", ["answers", "hangs"])
def test_sigterm_while_waiting_deletes_the_job_and_exits_143(tmp_path: Path, deletion: str) -> None:
    command = [sys.executable, "-c", WAITER, str(tmp_path), json.dumps(RUNNING), deletion]
    with subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True) as waiter:
        deadline = time.monotonic() + 60
        while not (tmp_path / "waiting").exists():
            if waiter.poll() is not None or time.monotonic() > deadline:
                waiter.kill()
                pytest.fail(f"the waiter never waited: {waiter.communicate()[1]}")
            time.sleep(0.05)
        signalled = time.monotonic()
        waiter.send_signal(signal.SIGTERM)
        _, log = waiter.communicate(timeout=30)
    assert waiter.returncode == SIGTERM_EXIT, log
    assert "TrainJob ns/hih: SIGTERM while waiting for it" in log
    if deletion == "answers":
        assert (tmp_path / "deleted").read_text() == "ns/hih"
        assert "TrainJob ns/hih deleted" in log
    else:
        assert time.monotonic() - signalled < 15, "a hung deletion is given up on after its timeout"
        assert "TrainJob ns/hih: not deleted (no answer within 2 s)" in log
    assert "Traceback" not in log


def test_a_wait_that_ends_by_itself_deletes_nothing_and_gives_sigterm_back() -> None:
    before = signal.getsignal(signal.SIGTERM)

    def delete() -> None:
        pytest.fail("a job that ended by itself was deleted")

    with deleted_on_sigterm("ns/hih", delete):
        assert wait(RUNNING, COMPLETE).succeeded
    with pytest.raises(TrainJobFailed), deleted_on_sigterm("ns/hih", delete):
        wait(RUNNING, FAILED)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_wait_outside_the_main_thread_waits_without_the_handler() -> None:
    """Python takes signal handlers in the main thread only: a step run in another thread (a caller's pool) must still
    wait for its job, not fail right after creating it and leave it training for no one."""
    before = signal.getsignal(signal.SIGTERM)
    ended: list[object] = []

    def step() -> None:
        try:
            with deleted_on_sigterm("ns/hih", lambda: pytest.fail("nothing was to be deleted")):
                ended.append(wait(RUNNING, COMPLETE).succeeded)
        except BaseException as exc:  # pytest.fail too: the thread's failure is the test's
            ended.append(exc)

    worker = threading.Thread(target=step)
    worker.start()
    worker.join(30)
    assert ended == [True]
    assert signal.getsignal(signal.SIGTERM) is before
