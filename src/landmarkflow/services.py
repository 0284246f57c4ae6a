"""The network services a pipeline step may use, and the environment variables through which it reaches them.

On a cluster one Kubernetes Secret sets these variables in every step's pod (kfp-kubernetes `use_secret_as_env`);
a local run sets them itself. Credentials live in the environment only: never in pipeline parameters, logs,
MLflow params or compiled YAML.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from landmarkflow.logs import configure_logging
from landmarkflow.threads import size_step_threads

TRACKING_URI = "MLFLOW_TRACKING_URI"
"""The MLflow tracking server (http://...): runs, metrics, the registry, and artifacts proxied to its S3."""
S3_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
S3_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
S3_ENDPOINT = "AWS_ENDPOINT_URL"
"""An S3-compatible endpoint (SeaweedFS, MinIO); unset for AWS itself. boto3 and s3fs read it directly."""

SECRET_ENV: tuple[str, ...] = (TRACKING_URI, S3_ACCESS_KEY, S3_SECRET_KEY, S3_ENDPOINT)
"""Every variable the Secret provides, under its own name as the Secret's key."""
CREDENTIALS: tuple[str, ...] = (S3_ACCESS_KEY, S3_SECRET_KEY)
"""Variables whose values must never be printed or logged."""

SECRET_NAME_ENV = "LANDMARKFLOW_SECRET"
"""The name of that Secret: chosen at compile time (`pipelines/compile.py --secret`) and given to every step too, so
that a step missing a variable can say which Secret should have set it."""
DEFAULT_SECRET = "landmarkflow"


def secret_env(secret: str) -> list[dict[str, object]]:
    """A pod's environment from `secret`: each of SECRET_ENV through `valueFrom` (no value is ever written into a
    manifest), and SECRET_NAME_ENV naming the Secret."""
    refs = [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": name}}} for name in SECRET_ENV]
    return [*refs, {"name": SECRET_NAME_ENV, "value": secret}]


def secret_name() -> str:
    """The Secret this process's services come from, as its step or node was told (else the default)."""
    return os.environ.get(SECRET_NAME_ENV) or DEFAULT_SECRET


class ServiceEnvError(RuntimeError):
    """A pipeline step started without a variable it needs to reach its services."""


def require_tracking_uri() -> str:
    """The tracking URI every pipeline step must be given. A step never falls back to a local sqlite store: on a
    cluster that store would vanish with the step's pod, and the next step would not see what it logged."""
    uri = os.environ.get(TRACKING_URI, "").strip()
    if not uri:
        raise ServiceEnvError(
            f"{TRACKING_URI} is not set; a pipeline step logs to the MLflow tracking server it names. On a cluster it "
            f"comes from the key {TRACKING_URI} of the Kubernetes Secret {secret_name()!r} (pipelines/compile.py "
            "--secret); `make pipeline-run` sets it to the local store."
        )
    return uri


def start_step() -> Path:
    """What every pipeline step does first: require its tracking server, log one line per event, compute on the
    threads its pod asks for (`size_step_threads`), and work in a fresh, empty folder of its own, as on a pod's
    private disk, removed when the step's process ends. A step that relied on another step's files, or on the working
    directory it was started in, fails here, not first on a cluster. Returns that folder."""
    require_tracking_uri()
    configure_logging()
    size_step_threads()
    scratch = Path(tempfile.mkdtemp(prefix="landmarkflow-step-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.chdir(scratch)
    return scratch
