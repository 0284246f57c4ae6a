"""MLflow tracking setup: where the store is, how experiments are named, where artifacts go.

Default store: `sqlite:///mlflow/mlflow.db` with artifacts under `mlflow/artifacts` (both relative to
the working directory), unless MLFLOW_TRACKING_URI is set. A tracking server decides its own artifact
location, so we only pin one for local sqlite stores.

MLflow is imported inside the functions that use it: it takes seconds to import, and the CLI and the data
steps (ingest, DVC) import this module for its telemetry switch and names alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

ARTIFACTS_ENV = "LANDMARKFLOW_ARTIFACTS"
"""The artifact folder of a local sqlite store; a tracking server decides its own."""
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
}


def disable_telemetry() -> None:
    """Switch off the usage telemetry of MLflow, GX and DVC in this process and its children."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or the project's local sqlite store."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    return f"sqlite:///{Path('mlflow/mlflow.db').resolve()}"


def artifact_root() -> Path:
    """Where local stores keep artifacts (ARTIFACTS_ENV or mlflow/artifacts)."""
    return Path(os.environ.get(ARTIFACTS_ENV, "mlflow/artifacts")).resolve()


@dataclass(frozen=True)
class HttpRetryPolicy:
    """How MLflow's HTTP client retries a request to the tracking server (and so to the S3 it proxies artifacts to).

    MLflow retries every request itself, POSTs included: a refused or dropped connection, a timeout, HTTP 408, 429
    and 5xx (what the server answers while its S3 is down). Its defaults (7 retries, backoff factor 2) keep a step
    waiting ~4 min per request, sized for rate-limited hosted services; a self-hosted server that is restarting
    (a pod rescheduled, a rollout) is back within a minute or two, so we wait about half as long. urllib3 waits
    nothing before the first retry, then `backoff_factor * 2**n` s (n = 1, 2, ...; each at most 120 s) plus up to
    `jitter_s`. Each field is the value of an MLflow environment variable, which takes precedence when set.
    """

    retries: int = 7
    """MLFLOW_HTTP_REQUEST_MAX_RETRIES: 8 tries in all."""
    backoff_factor: int = 1
    """MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR (an int for MLflow): waits of 0, 2, 4, ..., 64 s, 126 s together."""
    jitter_s: float = 1.0
    """MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: spreads the retries of steps that lost the server at the same moment."""
    timeout_s: int = 60
    """MLFLOW_HTTP_REQUEST_TIMEOUT: per try; a proxied upload of a large checkpoint needs the server to answer
    after writing it to S3, seconds even for hundreds of MB."""

    @classmethod
    def from_env(cls) -> HttpRetryPolicy:
        """The bounds in force: the environment's where set, ours otherwise."""
        ours = cls()
        return cls(
            **{
                field: type(getattr(ours, field))(os.environ.get(variable, getattr(ours, field)))
                for field, variable in RETRY_ENV.items()
            }
        )

    def env(self) -> dict[str, str]:
        return {variable: str(getattr(self, field)) for field, variable in RETRY_ENV.items()}

    @property
    def tries(self) -> int:
        return self.retries + 1

    def backoff_s(self) -> float:
        """The waits between the tries of one request, jitter left out: the least time a failing request takes."""
        return float(sum(min(URLLIB3_BACKOFF_MAX_S, self.backoff_factor * 2**n) for n in range(1, self.retries)))

    def worst_case_s(self) -> float:
        """The longest one request can take: every try runs into its timeout, every wait gets its full jitter."""
        return self.tries * self.timeout_s + self.backoff_s() + max(0, self.retries - 1) * self.jitter_s


RETRY_ENV = {
    "retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "backoff_factor": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "jitter_s": "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
    "timeout_s": "MLFLOW_HTTP_REQUEST_TIMEOUT",
}
"""The MLflow environment variable behind each field of HttpRetryPolicy."""
URLLIB3_BACKOFF_MAX_S = 120.0
"""urllib3's cap on one wait between retries (Retry.DEFAULT_BACKOFF_MAX), which MLflow keeps."""
DEFAULT_RETRY_POLICY = HttpRetryPolicy()


def setup_tracking(must_exist: bool = False) -> str:
    """Point MLflow at the store with our retry bounds for a tracking server (unless the environment sets its own),
    and return the URI; child processes inherit both. A local sqlite store is created on first use, unless
    `must_exist` (a reader, such as predict: a new empty store would only say that the model does not exist)."""
    import mlflow

    disable_telemetry()
    for key, value in DEFAULT_RETRY_POLICY.env().items():
        os.environ.setdefault(key, value)
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        if must_exist and not database.is_file():
            raise FileNotFoundError(
                f"{database}: no MLflow store here; run from the project folder after `make pipeline-run`, "
                "or set MLFLOW_TRACKING_URI to the tracking server that holds the model"
            )
        database.parent.mkdir(parents=True, exist_ok=True)
        _create_sqlite_store_once(database, uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _create_sqlite_store_once(database: Path, uri: str) -> None:
    """Create a new local store's tables while holding a lock beside it. MLflow migrates a new sqlite file in
    whichever process opens it first; two processes that open one new store at once (two `landmarkflow train` in a
    fresh folder, a job and the script that watches it) both ran the migrations, and one died on a duplicate column.
    Once the file exists under the lock, its creator has finished."""
    import fcntl

    from mlflow.tracking import MlflowClient

    with database.with_name(f"{database.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not database.is_file() or database.stat().st_size == 0:
            MlflowClient(uri).search_experiments(max_results=1)


def experiment_name(dataset: str) -> str:
    """DESIGN.md naming: one experiment per dataset, so all models on it compare side by side."""
    return f"landmarks/{dataset}"


def data_experiment_name(dataset: str) -> str:
    """Where the data validation runs of a dataset go: beside the model runs they would crowd the comparison
    charts with runs that have no model metrics."""
    return f"data/{dataset}"


def registered_model_name(model: str, dataset: str) -> str:
    """DESIGN.md naming: `<model>-<dataset>`, e.g. `hih-synthetic`."""
    return f"{model}-{dataset}"


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
"""What the MLflow UI calls a model-training experiment: it then opens on the runs table and charts, not on the
GenAI overview (traces, evaluations) that it shows for an experiment of unknown kind."""


def ensure_experiment(name: str) -> str:
    """Experiment id for `name`, creating it (with a local artifact location for sqlite stores); either way it is
    marked as a model-training experiment for the UI. Two steps may create it at the same moment (two branches of a
    first run): the one that loses the race takes the winner's. A deleted experiment of that name is refused, saying
    how to restore it: runs cannot go into it, and MLflow's own error named neither the experiment nor a way out."""
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == LifecycleStage.DELETED:
            raise ValueError(
                f"MLflow experiment {name!r} (id {existing.experiment_id}) in {tracking_uri()} is deleted (in the "
                "UI?), and a deleted experiment takes no runs while its name stays taken: restore it (`mlflow "
                f"experiments restore --experiment-id {existing.experiment_id}` with MLFLOW_TRACKING_URI set to that "
                "store); its runs hold the checkpoints and plots of the versions registered from them"
            )
        if existing.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
            client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
        return existing.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:"):
        location = (artifact_root() / name.replace("/", "_")).as_uri()
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
        )
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    return ensure_experiment(name)


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log `metrics` at `step` in one batch: one store transaction, where `log_metric` costs one per metric."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, float(value), now, step) for key, value in metrics.items()])
