"""MLflow model registry: register a version with lineage tags, move `challenger` and `champion`.

A registered version is the deployable ONNX model (coordinates out, crop metadata inside). Its run
holds the PyTorch checkpoint, the config and every plot; the version's tags tie it to the exact data
(DVC hash), code (git commit) and recipe (config hash) and carry its test NME.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from landmarkflow.runtime import SHAPE_MODEL_FILE, DeployInfo

CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class Lineage:
    """What a version was made from."""

    data_hash: str
    git_commit: str
    config_hash: str

    def tags(self) -> dict[str, str]:
        return {"data_hash": self.data_hash, GIT_COMMIT_TAG: self.git_commit, "config_hash": self.config_hash}


GATE_TAG = "gate"
"""The gate outcome a version carries: `passed` or `failed`."""
PROMOTED_TAG = "promoted"
"""`true` on a version once it has been champion (it stays when the alias moves on)."""
ROLLED_BACK_TAG = "rolled_back"
"""Why `champion` was rolled back from a version by hand (landmarkflow.rollback); promote refuses such a version."""
GIT_COMMIT_TAG = "git_commit"
"""The commit a training run (and so its version, `Lineage.git_commit`) was made from."""
NME_TAG = "test_nme"
REQUIRED_TAGS = (*(field.name for field in fields(Lineage)), NME_TAG, GATE_TAG)
"""What a registered version always carries; no alias points at a version without them."""


@dataclass(frozen=True)
class VersionInfo:
    """The registry's view of one version, as the gate and promotion need it."""

    name: str
    version: str
    run_id: str
    nme: float | None
    data_hash: str | None
    source: str
    tags: dict[str, str]

    @classmethod
    def of(cls, version: ModelVersion) -> VersionInfo:
        nme = version.tags.get(NME_TAG)
        return cls(
            name=version.name,
            version=str(version.version),
            run_id=version.run_id,
            nme=float(nme) if nme is not None else None,
            data_hash=version.tags.get("data_hash"),
            source=version.source,
            tags=dict(version.tags),
        )

    def missing_tags(self) -> list[str]:
        return [key for key in REQUIRED_TAGS if key not in self.tags]

    def champion_refusal(self) -> str | None:
        """Why this version may not be champion (promote's and rollback's one rule), None when it may: every
        required tag, and its gate passed."""
        if missing := self.missing_tags():
            return f"registered without {', '.join(missing)}"
        if self.tags[GATE_TAG] != "passed":
            return f"its registry tag {GATE_TAG}={self.tags[GATE_TAG]}, not passed"
        return None


def not_found(exc: MlflowException) -> bool:
    """Whether the tracking server answered that the model, version or alias asked for does not exist."""
    return exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


GIT_COMMIT_ENV = "LANDMARKFLOW_GIT_COMMIT"
"""The commit an image was built from (components/Dockerfile bakes it in): a pod has no .git to ask."""


def git_commit(repo: Path | None = None) -> str:
    """HEAD's commit, suffixed `-dirty` when the work tree has changes; outside git the commit baked into the image
    (GIT_COMMIT_ENV), else `unknown`."""
    cwd = repo or Path.cwd()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get(GIT_COMMIT_ENV) or "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def onnx_pip_requirements() -> list[str]:
    """The pinned requirements MLflow would infer for our ONNX models: what its ONNX loader imports (numpy, onnx,
    onnxruntime; MLflow adds itself). Stating them spares the inference, a subprocess that imports MLflow again and
    loads the model (~4 s of the register step); a unit test checks that the two agree."""
    return [f"numpy=={np.__version__}", *mlflow.onnx.get_default_pip_requirements()]


def log_onnx_model(run_id: str, onnx_path: Path) -> str:
    """Log the ONNX file as the run's model, its input/output signature from the file's own deploy metadata, with
    export's shape model beside it when there is one; returns its model URI."""
    import onnx  # only registering needs it; the gate and promotion import this module too

    proto = onnx.load(str(onnx_path))
    info = DeployInfo.from_proto(proto, onnx_path)
    example = np.zeros((1, 3, info.input_size, info.input_size), dtype=np.float32)
    signature = infer_signature(example, np.zeros((1, info.num_points, 2), dtype=np.float32))
    with mlflow.start_run(run_id=run_id):
        model_info = mlflow.onnx.log_model(
            proto,
            name="model",
            signature=signature,
            save_as_external_data=False,
            onnx_execution_providers=["CPUExecutionProvider"],
            pip_requirements=onnx_pip_requirements(),
            extra_files=[str(shapes)] if (shapes := onnx_path.parent / SHAPE_MODEL_FILE).is_file() else None,
        )
    return model_info.model_uri


def ensure_registered_model(name: str, description: str) -> None:
    """Create the registered model `name` unless it exists (another run may create it at the same moment)."""
    try:
        MlflowClient().create_registered_model(name, description=description)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def register_version(model_uri: str, name: str, tags: dict[str, str]) -> str:
    """Create a registered version of the logged model `model_uri` under `name` with `tags`; returns its number.

    The version and its tags are one request, created in one transaction: no version exists without its tags.
    `mlflow.register_model` passes the logged model's id with its `models:/` source, which a tracking server
    requires (a sqlite store alone would also take the bare source); the run comes from the logged model.
    """
    ensure_registered_model(name, f"{name}: landmark model, ONNX with coordinates out")
    return str(mlflow.register_model(model_uri, name, tags=tags).version)


def versions_of_run(name: str, run_id: str) -> list[VersionInfo]:
    """The versions of `name` registered from the training run `run_id`, oldest first: one, unless an earlier try
    of the register step had already made one when it failed, or the HTTP client retried a create that the server
    had carried out."""
    found = MlflowClient().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    return sorted((VersionInfo.of(version) for version in found), key=lambda info: int(info.version))


def delete_version(name: str, version: str) -> None:
    MlflowClient().delete_model_version(name, version)


def get_version(name: str, version: str) -> VersionInfo:
    return VersionInfo.of(MlflowClient().get_model_version(name, version))


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` at `version` (an atomic re-point: serving code never changes)."""
    MlflowClient().set_registered_model_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    """Remove `alias` from the registered model `name`, whichever version holds it."""
    MlflowClient().delete_registered_model_alias(name, alias)


def version_by_alias(name: str, alias: str) -> VersionInfo | None:
    """The version an alias points at, or None when the model or the alias does not exist yet; any other failure
    (the server gone) is raised, never taken for "no champion"."""
    client = MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not_found(exc):
            return None
        raise
    version = model.aliases.get(alias)
    return None if version is None else VersionInfo.of(client.get_model_version(name, str(version)))


def latest_version(name: str) -> VersionInfo | None:
    """The newest version of `name` whatever its gate said, or None when it has none (or does not exist yet)."""
    found = MlflowClient().search_model_versions(f"name='{name}'", order_by=["version_number DESC"], max_results=1)
    return VersionInfo.of(found[0]) if found else None


def champion_or_newest(name: str) -> tuple[VersionInfo, str] | None:
    """The version to show of a model, and which it is: its champion, else its newest version ("newest", one whose
    gate may have failed); None when nothing is registered under `name`."""
    champion = version_by_alias(name, CHAMPION)
    if champion is not None:
        return champion, CHAMPION
    newest = latest_version(name)
    return None if newest is None else (newest, "newest")


def version_history(name: str) -> list[dict[str, Any]]:
    """Every version of `name`, oldest first, as `landmarkflow models versions` shows it: its aliases, gate outcome,
    test NME, lineage and whether it was champion or rolled back (why). Empty when `name` is not registered."""
    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if not_found(exc):
            return []
        raise
    found = sorted(
        (VersionInfo.of(version) for version in client.search_model_versions(f"name='{name}'")),
        key=lambda info: int(info.version),
    )
    return [
        {
            "version": info.version,
            "aliases": sorted(alias for alias, number in aliases.items() if str(number) == info.version),
            "gate": info.tags.get(GATE_TAG),
            "test_nme": info.nme,
            "data_hash": info.data_hash,
            "config_hash": info.tags.get("config_hash"),
            "git_commit": info.tags.get(GIT_COMMIT_TAG),
            "promoted": info.tags.get(PROMOTED_TAG) == "true",
            "rolled_back": info.tags.get(ROLLED_BACK_TAG),
            "run_id": info.run_id,
        }
        for info in found
    ]


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Add tags to an existing version (the gate outcome, for the audit trail)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def untag_version(name: str, version: str, key: str) -> None:
    """Remove the tag `key` from an existing version (a rollback's, once that version is champion again)."""
    MlflowClient().delete_model_version_tag(name, version, key)
