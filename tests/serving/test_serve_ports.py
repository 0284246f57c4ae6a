"""The test servers' own start-up: a port taken between choosing it and binding it costs a retry, not a failed test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from landmarkflow.tracking import TELEMETRY_OFF
from pipelines.local_services import HOST, free_ports
from tests import servers
from tests.servers import answers, serve_on_free_port
from tests.test_inference import constant_model

pytestmark = [pytest.mark.integration]


def test_a_server_whose_port_was_taken_starts_again_on_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model.onnx"
    onnx.save(constant_model(), model)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stranger:
        stranger.bind((HOST, 0))
        stranger.listen()
        taken = stranger.getsockname()[1]
        chosen = iter([[taken], free_ports(1)])
        monkeypatch.setattr(servers, "free_ports", lambda count: next(chosen))
        log = tmp_path / "serve.log"
        server, url = serve_on_free_port(["--model", str(model)], log, {**os.environ, **TELEMETRY_OFF})
        with server:
            assert not url.endswith(f":{taken}") and answers(url)
            assert "address already in use" in log.read_text()


@pytest.mark.parametrize("name", ["missing.onnx", "garbage.onnx"])
def test_several_workers_with_a_model_that_cannot_load_stop_at_once_naming_it(tmp_path: Path, name: str) -> None:
    """uvicorn restarts a worker that dies while it builds its app, for ever; the model is checked before."""
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    (port,) = free_ports(1)
    command = [sys.executable, "-m", "landmarkflow.cli", "serve", "--model", str(tmp_path / name), "--workers", "2"]
    done = subprocess.run(
        [*command, "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **TELEMETRY_OFF},
    )
    assert done.returncode != 0 and name in done.stderr and "Traceback" not in done.stderr
