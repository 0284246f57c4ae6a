"""What each step hands to the next: small dataclasses saved as JSON between processes (or pods).

Every step's component loads some of these, so this module imports nothing heavy (no torch, no MLflow).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from landmarkflow.config import ExperimentConfig, parse_config
from landmarkflow.fileio import atomic_write_text

Result = TypeVar("Result", bound="StepResult")


@dataclass
class StepResult:
    """A step's outcome; `save`/`load` move it between processes as JSON."""

    def save(self, path: str | Path) -> Path:
        atomic_write_text(path, json.dumps(asdict(self), indent=2, default=str))
        return Path(path)

    @classmethod
    def load(cls: type[Result], path: str | Path) -> Result:
        raw = json.loads(Path(path).read_text())
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


@dataclass
class IngestResult(StepResult):
    """`root` is where ingest read the data; a step elsewhere fetches it by `data_hash` from `data_remote`
    (the DVC remote as pods reach it; "" when the data was not pushed), where the root is the path
    `root_in_version` inside the versioned folder ("" when the root itself is versioned)."""

    dataset: str
    layout: str
    root: str
    manifest: str
    data_hash: str
    counts: dict[str, int]
    problems: list[dict[str, Any]] = field(default_factory=list)
    data_remote: str = ""
    root_in_version: str = ""
    manifest_sha256: str = ""
    """The manifest file's own hash, so that a step given this result can tell that file was written again since."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def require_same_manifest(located: IngestResult | TrainResult) -> None:
    """ValueError when the manifest `located` names is no longer the one it was made with: data ingested again into
    the same workdir would otherwise be read beside another dataset's root, or scored for a model trained on the
    old data. Results of before the hash was kept pass."""
    path = Path(located.manifest)
    if not located.manifest_sha256 or not path.is_file() or file_sha256(path) == located.manifest_sha256:
        return
    if isinstance(located, TrainResult):
        raise ValueError(
            f"{path} was written again after run {located.run_id} trained on it ({located.dataset} from "
            f"{located.root}): train again on the data there now, or ingest the new data into another workdir"
        )
    raise ValueError(
        f"{path} was written again after this ingest result read {located.dataset} from {located.root}: give the "
        "ingest result written with it"
    )


def require_remote(located: IngestResult | TrainResult, reader: str) -> None:
    """ValueError when ingest pushed the data to no DVC remote, the one place `reader`, elsewhere, could fetch it
    from."""
    if not located.data_remote:
        raise ValueError(
            f"{located.manifest}: ingest pushed the data to no DVC remote (data hash {located.data_hash}), so "
            f"{reader} cannot fetch it; give ingest a remote (the pipeline's dvc_remote_url, `landmarkflow data "
            "ingest --remote`, or a repo_root whose data/ holds the data and whose DVC config names a remote)"
        )


@dataclass
class ValidateResult(StepResult):
    """`data validate`'s verdict on a workdir's manifest, kept there so that `train` by hand, like the pipeline,
    does not learn from data that failed it."""

    success: bool
    manifest: str
    manifest_sha256: str
    failed_checks: list[str]
    report: str


def require_validated(verdict: ValidateResult, ingested: IngestResult) -> None:
    """ValueError when `verdict` failed the manifest `ingested` names (a verdict on another manifest says nothing)."""
    if verdict.success or verdict.manifest_sha256 != ingested.manifest_sha256:
        return
    raise ValueError(
        f"{ingested.manifest}: data validation failed on this data ({', '.join(verdict.failed_checks)}; report "
        f"{verdict.report}): mend the data and ingest it again; train does not learn from data that fails validation"
    )


@dataclass
class FreshnessResult(StepResult):
    """Which models to retrain on the ingested data: `retrain` lists their config paths, in the order given;
    `decisions` holds one entry per config (config, model, retrain, reason, champion_version, champion_data_hash)."""

    dataset: str
    data_hash: str
    retrain: list[str]
    decisions: list[dict[str, Any]]
    message: str
    run_id: str = ""


@dataclass
class TrainResult(StepResult):
    run_id: str
    checkpoint: str
    config_path: str
    config_hash: str
    model: str
    dataset: str
    data_hash: str
    manifest: str
    root: str
    seconds: float
    final_val_nme: float
    """The validation NME of the weights model.pt holds (`train.checkpoint.kept_val_nme`)."""
    config: dict[str, Any] = field(default_factory=dict)
    data_remote: str = ""
    root_in_version: str = ""
    manifest_sha256: str = ""
    """The ingest's (`IngestResult.manifest_sha256`)."""

    def experiment_config(self) -> ExperimentConfig:
        """The config this model was trained with, overrides included."""
        return parse_config(self.config, source=f"train result of run {self.run_id}")


@dataclass
class EvalResult(StepResult):
    run_id: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    plots: list[str] = field(default_factory=list)
    perturbed: dict[str, float] = field(default_factory=dict)
    private_metrics: dict[str, float] = field(default_factory=dict)  # the private split's; never gated
    real_metrics: dict[str, float] = field(default_factory=dict)
    """NME/FR/AUC on real faces given beside the data (empty when none were), and `nme_<post-step>` for a model with
    one; `nme` is gated by `gate.max_real_nme`."""

    @property
    def nme(self) -> float:
        return self.metrics["nme"]


@dataclass
class ExportResult(StepResult):
    run_id: str
    onnx_path: str
    torch_nme: float
    onnx_nme: float
    parity_delta: float
    max_abs_diff_px: float
    parity_images: int
    tensorrt: str
    engines: list[dict[str, Any]] = field(default_factory=list)
    """One `export.engine_checks.EngineCheck` per precision, on a GPU."""
    latency_ms: dict[str, float] = field(default_factory=dict)
    """`{runtime}_ms_batch{N}` on a GPU: torch_eager, onnxruntime_cuda, tensorrt_<precision>."""


@dataclass
class GateResult(StepResult):
    run_id: str
    registered_name: str
    passed: bool
    reasons: str
    decision: dict[str, Any]
    champion_version: str | None
    """The champion the gate compared with; promotion compares again if another has taken its place since."""
    champion_tolerance: float
    """The NME excess over the champion the gate allowed (its config's), for that second comparison."""


def require_results_of(run_id: str, **results: EvalResult | ExportResult | GateResult) -> None:
    """ValueError naming the steps to run again when a result (by its step's name) is another training run's: a
    workdir keeps an earlier training's evaluate.json and export.json when `train` runs again, and gating or
    registering with them would give this run another model's NME, parity or ONNX."""
    stale = {step: result.run_id for step, result in results.items() if result.run_id != run_id}
    if stale:
        found = ", ".join(f"{step} of run {other}" for step, other in stale.items())
        raise ValueError(
            f"the results given are of another training run ({found}), not of run {run_id}: run "
            f"{' and '.join(stale)} again for it first"
        )


@dataclass
class RegisterResult(StepResult):
    """`challenger`: whether this version holds that alias now (it passed the gates, and no newer version had it)."""

    registered_name: str
    version: str
    challenger: bool


@dataclass
class PromoteResult(StepResult):
    registered_name: str
    champion_version: str | None
    promoted: bool
    message: str
