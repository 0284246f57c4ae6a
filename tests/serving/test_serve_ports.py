"""The test servers' own start-up: a port taken between choosing it and binding it costs a retry, not a failed test."""

from __future__ import annotations

import os
import socket
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
