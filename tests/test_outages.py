"""A tracking server that does not answer: MLflow's retries run under our bounds, then the step fails with one line
that names the server, in the CLI and in a component's process alike; the gate never takes an outage for "no
champion". The server here is a port nobody listens on; tests/test_registry_faults.py stops real ones."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from requests import Request
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import RetryError
from typer.testing import CliRunner
from urllib3.exceptions import MaxRetryError, ReadTimeoutError, ResponseError

from landmarkflow import steps
from landmarkflow.cli import app
from landmarkflow.config import load_config
from landmarkflow.outages import ServiceUnreachable, unreachable_service
from landmarkflow.tracking import RETRY_ENV, HttpRetryPolicy, setup_tracking
from tests.servers import HOST, free_ports


@pytest.fixture
def nobody_listening(monkeypatch: pytest.MonkeyPatch) -> str:
    """MLFLOW_TRACKING_URI at a free port, with bounds of 3 tries and waits of 0 and 0.2 s."""
    url = f"http://{HOST}:{free_ports(1)[0]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    for variable, value in HttpRetryPolicy(retries=2, backoff_factor=0, jitter_s=0.0, timeout_s=2).env().items():
        monkeypatch.setenv(variable, value)
    return url


def test_our_bounds_and_what_they_take() -> None:
    policy = HttpRetryPolicy()
    assert (policy.tries, policy.backoff_s()) == (8, 126.0)  # waits 0, 2, 4, ..., 64 s
    assert policy.worst_case_s() == 8 * 60 + 126 + 6 * 1.0
    mlflow_defaults = HttpRetryPolicy(retries=7, backoff_factor=2)
    assert mlflow_defaults.backoff_s() == 4 + 8 + 16 + 32 + 64 + 120  # the last wait capped at urllib3's 120 s


def test_setup_tracking_sets_our_bounds_where_the_environment_sets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in RETRY_ENV.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    setup_tracking()
    assert HttpRetryPolicy.from_env() == HttpRetryPolicy(timeout_s=7)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"


def _candidate() -> tuple[steps.TrainResult, steps.EvalResult, steps.ExportResult]:
    config = load_config("configs/hih_synthetic_tiny.yaml")
    trained = steps.TrainResult(
        "run0",
        "model.pt",
        "c.yaml",
        config.config_hash(),
        "hih",
        "synthetic",
        "d0",
        "m.parquet",
        ".",
        1.0,
        0.1,
        config.to_dict(),
    )
    exported = steps.ExportResult("run0", "model.onnx", 0.05, 0.05, 0.0, 0.0, 4, "skipped")
    return trained, steps.EvalResult("run0", {"nme": 0.05}, {"nme": 0.5}), exported


def test_the_gate_fails_on_an_outage_instead_of_seeing_no_champion(nobody_listening: str) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceUnreachable) as caught:
        steps.gate(*_candidate())
    message = str(caught.value)
    assert message.startswith(f"MLflow tracking server {nobody_listening} unreachable on all 3 tries")
    assert "Connection refused" in message and "MLFLOW_HTTP_REQUEST_MAX_RETRIES=2" in message
    assert time.monotonic() - started < 20


def test_the_cli_prints_the_outage_as_one_line(nobody_listening: str, tmp_path: Path) -> None:
    steps.RegisterResult("hih-synthetic", "3", True).save(tmp_path / "register.json")
    steps.GateResult("run0", "hih-synthetic", True, "all gates passed", {"candidate_nme": 0.05}, "2", 0.0).save(
        tmp_path / "gate.json"
    )
    result = CliRunner().invoke(app, ["promote", "--workdir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"error: MLflow tracking server {nobody_listening} unreachable" in " ".join(result.output.split())


def test_a_component_process_ends_with_the_outage_alone(nobody_listening: str) -> None:
    """What a component's log shows: configure_logging (its first call) turns the traceback into one line."""
    script = (
        "from landmarkflow.logs import configure_logging; configure_logging(); "
        "from landmarkflow.registry import version_by_alias; from landmarkflow.outages import tracking_step; "
        "tracking_step(version_by_alias)('hih-synthetic', 'champion')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: MLflow tracking server {nobody_listening} unreachable on all 3 tries")


@pytest.mark.parametrize(
    "reason,path,says",
    [
        (
            ResponseError("too many 500 error responses"),
            "/api/2.0/mlflow-artifacts/artifacts/1/m/model.onnx",
            "failed (HTTP 5xx) proxying artifacts to its S3 store on all",
        ),
        (
            ReadTimeoutError(None, "/", "Read timed out. (read timeout=60)"),
            "/api/2.0/mlflow/runs/get",
            "did not answer within 60 s on all",
        ),
    ],
)
def test_what_the_server_did_is_named(reason: Exception, path: str, says: str) -> None:
    """The two outages other than a refused connection, as requests raises them once urllib3's retries are spent."""
    url = f"http://{HOST}:5123{path}"
    kind = RetryError if isinstance(reason, ResponseError) else RequestsConnectionError
    given_up = kind(MaxRetryError(None, url, reason), request=Request("PUT", url).prepare())
    outage = unreachable_service(MlflowException(f"API request to {url} failed"))
    assert outage is None  # nothing to go by without the HTTP client's exception
    try:
        raise MlflowException(f"API request to {url} failed") from given_up
    except MlflowException as exc:
        outage = unreachable_service(exc)
    assert outage is not None and str(outage).startswith(f"MLflow tracking server http://{HOST}:5123 {says} 8 tries")
