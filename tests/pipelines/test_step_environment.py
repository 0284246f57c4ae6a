"""Every component requires the tracking URI before it does anything: on a cluster a step that fell back to a local
sqlite store would log into its own pod, and the next step would find nothing. (gpu_requests, arithmetic on two
parameters, reaches no service.)"""

from __future__ import annotations

import importlib
import inspect

import pytest

from landmarkflow.services import SECRET_NAME_ENV, TRACKING_URI, ServiceEnvError

STEPS = ("ingest", "freshness", "validate", "train", "evaluate", "export", "gate", "register", "promote")


@pytest.mark.parametrize("step", STEPS)
def test_a_step_without_the_tracking_uri_stops_at_its_start(step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Called with no arguments at all (None for each), so anything before the check would fail differently."""
    monkeypatch.delenv(TRACKING_URI)
    monkeypatch.setenv(SECRET_NAME_ENV, "team-landmarkflow")
    function = getattr(importlib.import_module(f"components.{step}.component"), step).python_func
    arguments = dict.fromkeys(inspect.signature(function).parameters)
    with pytest.raises(ServiceEnvError, match=f"{TRACKING_URI} is not set.*Kubernetes Secret 'team-landmarkflow'"):
        function(**arguments)
