"""Waiting for a TrainJob, on statuses as the API returns them: it ends with the job, says why a job failed, and
outlasts a short API outage but not a long one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from landmarkflow.trainjob.status import (
    KubernetesUnreachable,
    TrainJobFailed,
    WaitPolicy,
    outcome,
    wait_for_trainjob,
)

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
