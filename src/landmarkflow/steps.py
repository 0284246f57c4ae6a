"""The pipeline's steps as plain functions: ingest, validate, train, evaluate, export, gate, register, promote.

The CLI, the Kubeflow components and the tests call these same functions. Each returns a result
object that can be saved as JSON, which is how one step hands its outcome to the next across process
(or pod) boundaries.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig, load_config, parse_config
from landmarkflow.data import versioning
from landmarkflow.data.formats.readers import read_dataset_leniently
from landmarkflow.data.manifest import read_manifest, to_records, write_manifest
from landmarkflow.data.validate import CheckFailure, ValidationResult, validate_manifest
from landmarkflow.evaluation.baseline import MeanShape
from landmarkflow.evaluation.gates import GateDecision, decide
from landmarkflow.evaluation.metrics import per_image_nme, summarize
from landmarkflow.evaluation.perturb import perturb_boxes
from landmarkflow.evaluation.plots import plot_ced, plot_loss_curves, plot_overlay_grid
from landmarkflow.evaluation.predictions import predict_records, torch_predictor
from landmarkflow.export.metadata import DeployInfo
from landmarkflow.export.onnx import export_onnx, onnx_session, run_onnx
from landmarkflow.export.tensorrt import build_tensorrt_engine, tensorrt_available
from landmarkflow.fileio import atomic_write_text
from landmarkflow.imageio import read_rgb
from landmarkflow.layouts import get_layout
from landmarkflow.registry import (
    CHALLENGER,
    CHAMPION,
    Lineage,
    git_commit,
    log_onnx_model,
    register_version,
    set_alias,
    tag_version,
    version_by_alias,
)
from landmarkflow.tracking import ensure_experiment, experiment_name, registered_model_name, setup_tracking
from landmarkflow.train.checkpoint import FINAL, load_model, load_state

log = logging.getLogger(__name__)
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


# ---------------------------------------------------------------- ingest


@dataclass
class IngestResult(StepResult):
    dataset: str
    layout: str
    root: str
    manifest: str
    data_hash: str
    counts: dict[str, int]
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SynthOptions:
    """How to render the synthetic default when its folder is empty."""

    num_train: int = 2000
    num_test: int = 300
    seed: int = 0
    image_size: int = 256


@dataclass(frozen=True)
class DataRevision:
    """Data pinned by a git revision: a pod clones `repo` at `rev` into `checkout_dir` and `dvc pull`s data.dvc.

    `remote_url` / `endpoint_url` point the clone at the object store as the pod sees it (written to the
    clone's git-ignored `.dvc/config.local`); credentials come from the environment only.
    """

    repo: str
    rev: str
    checkout_dir: Path
    remote_url: str | None = None
    endpoint_url: str | None = None


def ingest(
    dataset: str,
    root: str | Path,
    manifest_path: str | Path,
    synth: SynthOptions | None = None,
    repo_root: str | Path | None = None,
    revision: DataRevision | None = None,
) -> IngestResult:
    """Read a dataset from its native files into a manifest, versioning the bytes with DVC.

    With `revision`, the data is first materialised from git + DVC and `root` is a path inside that
    checkout (e.g. data/raw/synthetic); the pinned DVC hash is the data hash. Otherwise, for `synthetic`,
    an empty root is first rendered from `synth`, and when `root` lies inside the repo's DVC-tracked
    `data/` the folder is (re)tracked and pushed and its DVC hash becomes the data hash.
    """
    if revision is not None:
        return _ingest_revision(dataset, Path(root), Path(manifest_path), revision)
    root = Path(root).resolve()
    if dataset == "synthetic" and synth is not None and not any(root.glob("**/*.pts")):
        from landmarkflow.data.synthetic import synthesize

        synthesize(root, synth.num_train, synth.num_test, seed=synth.seed, image_size=synth.image_size)
    return _read_into_manifest(
        dataset, root, Path(manifest_path), lambda path: _data_hash(root, Path(repo_root) if repo_root else None, path)
    )


def _ingest_revision(dataset: str, root: Path, manifest_path: Path, revision: DataRevision) -> IngestResult:
    if root.is_absolute() or ".." in root.parts:
        raise ValueError(f"with a git revision, the data root must be a path inside the repo, got {root}")
    pulled = versioning.checkout_revision(
        revision.repo,
        revision.rev,
        revision.checkout_dir,
        remote_url=revision.remote_url,
        endpoint_url=revision.endpoint_url,
    )
    log.info(
        "data of %s@%s (commit %s) pulled into %s", revision.repo, revision.rev, pulled.commit[:12], pulled.data_dir
    )
    return _read_into_manifest(
        dataset, Path(revision.checkout_dir).resolve() / root, manifest_path, lambda _: pulled.version.md5
    )


def _read_into_manifest(
    dataset: str, root: Path, manifest_path: Path, data_hash_of: Callable[[Path], str]
) -> IngestResult:
    records, broken = read_dataset_leniently(dataset, root)
    problems = [{"check": e.check, "file": str(e.path), "line": e.line, "message": str(e)} for e in broken]
    for problem in problems:
        log.warning("not ingested: %s", problem["message"])
    path = write_manifest(records, manifest_path)
    data_hash = data_hash_of(path)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.split] = counts.get(record.split, 0) + 1
    layouts = sorted({r.layout for r in records})
    log.info("ingested %d faces of %s from %s (%s), data hash %s", len(records), dataset, root, counts, data_hash)
    return IngestResult(dataset, ",".join(layouts), str(root), str(path), data_hash, counts, problems)


def _data_hash(root: Path, repo_root: Path | None, manifest: Path) -> str:
    repo_root = repo_root.resolve() if repo_root else None
    tracked_dir = repo_root / "data" if repo_root else None
    if tracked_dir is not None and root.is_relative_to(tracked_dir):
        return versioning.track(tracked_dir, repo_root).md5
    import hashlib

    return "manifest-sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()[:32]


# ---------------------------------------------------------------- validate


def validate(ingested: IngestResult, report_dir: str | Path) -> ValidationResult:
    """Run the data suite and image checks, with the files ingest could not read as failures of their
    checks, and log the outcome with its reports as an MLflow run; the caller decides whether a failure
    stops the pipeline."""
    by_check: dict[str, list[str]] = {}
    for problem in ingested.problems:
        by_check.setdefault(problem["check"], []).append(problem["message"])
    reader_failures = [CheckFailure(check, len(examples), examples) for check, examples in by_check.items()]
    frame = read_manifest(ingested.manifest)
    result = validate_manifest(frame, Path(ingested.root), Path(report_dir), reader_failures=reader_failures)
    _log_validation(result, ingested)
    return result


def _log_validation(result: ValidationResult, ingested: IngestResult) -> None:
    """A `validate` run beside the training runs: verdict, counts, warnings, the HTML report and GX Data Docs."""
    setup_tracking()
    client = MlflowClient()
    run = client.create_run(
        ensure_experiment(experiment_name(ingested.dataset)),
        run_name=f"validate {ingested.dataset}",
        tags={
            "step": "validate",
            "dataset": ingested.dataset,
            "data_hash": ingested.data_hash,
            "validation": "passed" if result.success else "failed",
            "failed_checks": ",".join(f.check for f in result.failures) or "none",
        },
    )
    run_id = run.info.run_id
    for key, value in (
        ("faces", result.num_faces),
        ("images", result.num_images),
        ("failed_checks", len(result.failures)),
        ("warnings", len(result.warnings)),
        ("validation_seconds", result.seconds),
    ):
        client.log_metric(run_id, key, value)
    if result.report_path is not None:
        client.log_artifacts(run_id, str(result.report_path.parent), "validation")
    client.set_terminated(run_id, "FINISHED" if result.success else "FAILED")


# ---------------------------------------------------------------- train


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
    config: dict[str, Any] = field(default_factory=dict)

    def experiment_config(self) -> ExperimentConfig:
        """The config this model was trained with, overrides included."""
        return parse_config(self.config, source=f"train result of run {self.run_id}")


def _flat_params(config: ExperimentConfig) -> dict[str, str]:
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = str(value)

    walk("", config.to_dict())
    return flat


def train(
    config_path: str | Path,
    ingested: IngestResult,
    out_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    nproc: int = 1,
) -> TrainResult:
    """Open an MLflow run for the experiment and train in it (DDP through torchrun when nproc > 1)."""
    config = load_config(config_path, overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_tracking()
    experiment_id = ensure_experiment(experiment_name(ingested.dataset))
    client = MlflowClient()
    run = client.create_run(
        experiment_id,
        run_name=config.name,
        tags={
            "model": config.model.name,
            "dataset": ingested.dataset,
            "config_hash": config.config_hash(),
            "data_hash": ingested.data_hash,
            "git_commit": git_commit(),
        },
    )
    run_id = run.info.run_id
    for key, value in _flat_params(config).items():
        client.log_param(run_id, key, value[:6000])
    resolved = out_dir / "config.json"
    atomic_write_text(resolved, json.dumps(config.to_dict(), indent=2))
    client.log_artifact(run_id, str(config_path), "config")
    client.log_artifact(run_id, str(resolved), "config")
    started = time.perf_counter()
    try:
        _launch_training(config_path, overrides or {}, ingested, out_dir, run_id, nproc)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    seconds = time.perf_counter() - started
    state = load_state(out_dir / FINAL)
    history = state["history"]
    plot = plot_loss_curves(history, out_dir / "loss_curves.png")
    client.log_artifact(run_id, str(plot), "plots")
    client.log_artifact(run_id, str(out_dir / FINAL), "checkpoint")
    client.log_metric(run_id, "train_seconds", seconds)
    val = history["val_nme"][-1] if history["val_nme"] else float("nan")
    return TrainResult(
        run_id=run_id,
        checkpoint=str(out_dir / FINAL),
        config_path=str(Path(config_path).resolve()),
        config_hash=config.config_hash(),
        model=config.model.name,
        dataset=ingested.dataset,
        data_hash=ingested.data_hash,
        manifest=ingested.manifest,
        root=ingested.root,
        seconds=seconds,
        final_val_nme=float(val),
        config=config.to_dict(),
    )


def _launch_training(
    config_path: str | Path, overrides: dict, ingested: IngestResult, out_dir: Path, run_id: str, nproc: int
) -> None:
    if nproc <= 1:
        from landmarkflow.train.run import fit_from_manifest

        config = load_config(config_path, overrides)
        fit_from_manifest(config, Path(ingested.manifest), Path(ingested.root), out_dir, run_id)
        return
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--standalone",
        "-m",
        "landmarkflow.train",
        "--config",
        str(config_path),
        "--manifest",
        ingested.manifest,
        "--root",
        ingested.root,
        "--out",
        str(out_dir),
        "--run-id",
        run_id,
        "--overrides",
        json.dumps(overrides),
    ]
    subprocess.run(command, check=True, env=os.environ.copy())


# ---------------------------------------------------------------- evaluate


@dataclass
class EvalResult(StepResult):
    run_id: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    plots: list[str] = field(default_factory=list)
    perturbed: dict[str, float] = field(default_factory=dict)

    @property
    def nme(self) -> float:
        return self.metrics["nme"]


def _split(records: list, name: str) -> list:
    return [r for r in records if r.split == name]


def evaluate(trained: TrainResult, out_dir: str | Path) -> EvalResult:
    """Test-split NME/FR/AUC (overall and per subset), the mean-shape baseline, CED and overlay plots."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, config = load_model(Path(trained.checkpoint))
    records = to_records(read_manifest(trained.manifest))
    test, train_records = _split(records, config.data.test_split), _split(records, "train")
    if not test:
        raise ValueError(f"{trained.manifest}: no faces in the {config.data.test_split!r} split")
    layout, root = get_layout(config.data.layout), Path(trained.root)
    gts = np.stack([r.landmarks for r in test])
    boxes = np.stack([r.bbox for r in test])
    train_landmarks = np.stack([r.landmarks for r in train_records])
    train_boxes = np.stack([r.bbox for r in train_records])
    predict = torch_predictor(model)
    preds = predict_records(predict, test, root, model.input_size, config.data.box_scale, config.eval.batch_size)
    nmes = per_image_nme(preds, gts, layout, boxes, config.data.normaliser)
    subsets = [r.subsets for r in test]
    metrics = summarize(nmes, config.eval.fr_threshold, config.eval.auc_threshold, subsets=subsets)
    baseline = MeanShape.fit(train_landmarks, train_boxes, config.data.box_scale, model.input_size)
    base_nmes = per_image_nme(baseline.predict(boxes), gts, layout, boxes, config.data.normaliser)
    baseline_metrics = summarize(base_nmes, config.eval.fr_threshold, config.eval.auc_threshold, subsets=subsets)
    moved = perturb_boxes(boxes, config.eval.perturb_shift, config.eval.perturb_scale, config.eval.perturb_seed)
    moved_preds = predict_records(
        predict, test, root, model.input_size, config.data.box_scale, config.eval.batch_size, moved
    )
    perturbed = {
        "nme_perturbed": float(per_image_nme(moved_preds, gts, layout, boxes, config.data.normaliser).mean()),
        "baseline_nme_perturbed": float(
            per_image_nme(baseline.predict(moved), gts, layout, boxes, config.data.normaliser).mean()
        ),
    }
    ced = plot_ced({config.model.name: nmes, "mean shape": base_nmes}, config.eval.auc_threshold, out_dir / "ced.png")
    shown = list(range(min(config.eval.overlay_count, len(test))))
    overlay = plot_overlay_grid(
        [read_rgb(root / test[i].image_path) for i in shown],
        [preds[i] for i in shown],
        [gts[i] for i in shown],
        out_dir / "test_overlays.png",
        nmes=[float(nmes[i]) for i in shown],
    )
    client = MlflowClient()
    for key, value in metrics.items():
        client.log_metric(trained.run_id, f"test_{key}", float(value))
    for key, value in baseline_metrics.items():
        client.log_metric(trained.run_id, f"baseline_{key}", float(value))
    client.log_metric(trained.run_id, "baseline_over_model_nme", float(base_nmes.mean() / max(nmes.mean(), 1e-12)))
    refined = model.refined_predictor(train_landmarks, train_boxes, config.data.box_scale)
    if refined is not None:
        step, refined_predict = refined
        refined_preds = predict_records(
            refined_predict, test, root, model.input_size, config.data.box_scale, config.eval.batch_size
        )
        metrics[f"nme_{step}"] = float(per_image_nme(refined_preds, gts, layout, boxes, config.data.normaliser).mean())
        client.log_metric(trained.run_id, f"test_nme_{step}", metrics[f"nme_{step}"])
        log.info("test NME with %s: %.3f%% (without: %.3f%%)", step, 100 * metrics[f"nme_{step}"], 100 * nmes.mean())
    client.log_metric(trained.run_id, "test_nme_perturbed", perturbed["nme_perturbed"])
    client.log_metric(trained.run_id, "baseline_nme_perturbed", perturbed["baseline_nme_perturbed"])
    for plot in (ced, overlay):
        client.log_artifact(trained.run_id, str(plot), "plots")
    log.info(
        "test NME %.3f%% (mean-shape baseline %.3f%%, %.1fx), FR %s, AUC %s",
        100 * metrics["nme"],
        100 * baseline_metrics["nme"],
        baseline_metrics["nme"] / max(metrics["nme"], 1e-12),
        {k: round(v, 4) for k, v in metrics.items() if k.startswith("fr")},
        {k: round(v, 4) for k, v in metrics.items() if k.startswith("auc")},
    )
    log.info(
        "perturbed boxes (centre +-%g, scale %s): NME %.3f%% (mean shape %.3f%%)",
        config.eval.perturb_shift,
        config.eval.perturb_scale,
        100 * perturbed["nme_perturbed"],
        100 * perturbed["baseline_nme_perturbed"],
    )
    return EvalResult(trained.run_id, metrics, baseline_metrics, [str(ced), str(overlay)], perturbed)


# ---------------------------------------------------------------- export


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


def deploy_info(config: ExperimentConfig) -> DeployInfo:
    """The crop convention a deployed model needs, from its config."""
    return DeployInfo(
        model=config.model.name,
        layout=config.data.layout,
        num_points=config.model.num_points,
        input_size=config.model.input_size,
        box_scale=config.data.box_scale,
        config_hash=config.config_hash(),
    )


def onnx_predictor(onnx_path: Path):
    """A numpy crops -> crop points function backed by onnxruntime."""
    session = onnx_session(onnx_path)
    return lambda crops: run_onnx(session, crops)


def export(trained: TrainResult, out_dir: str | Path) -> ExportResult:
    """ONNX of `predict` with its deploy metadata, parity on the test split, TensorRT when a GPU is here."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, config = load_model(Path(trained.checkpoint))
    onnx_path = export_onnx(model, out_dir / "model.onnx", deploy_info(config), opset=config.export.opset)
    records = _split(to_records(read_manifest(trained.manifest)), config.data.test_split)
    records = records[: config.export.parity_max_images]
    root, layout = Path(trained.root), get_layout(config.data.layout)
    common = (records, root, model.input_size, config.data.box_scale, config.eval.batch_size)
    torch_preds = predict_records(torch_predictor(model), *common)
    onnx_preds = predict_records(onnx_predictor(onnx_path), *common)
    gts, boxes = np.stack([r.landmarks for r in records]), np.stack([r.bbox for r in records])
    torch_nme = float(per_image_nme(torch_preds, gts, layout, boxes, config.data.normaliser).mean())
    onnx_nme = float(per_image_nme(onnx_preds, gts, layout, boxes, config.data.normaliser).mean())
    max_diff = float(np.abs(torch_preds - onnx_preds).max())
    available, reason = tensorrt_available()
    if available:
        engine = build_tensorrt_engine(onnx_path, out_dir / "model.plan", fp16=False)
        tensorrt = f"built {engine}"
    else:
        tensorrt = f"skipped: {reason}"
    log.info("TensorRT %s", tensorrt)
    client = MlflowClient()
    client.log_metric(trained.run_id, "onnx_parity_delta_nme", abs(onnx_nme - torch_nme))
    client.log_metric(trained.run_id, "onnx_max_abs_diff_px", max_diff)
    client.set_tag(trained.run_id, "tensorrt", tensorrt)
    return ExportResult(
        trained.run_id, str(onnx_path), torch_nme, onnx_nme, onnx_nme - torch_nme, max_diff, len(records), tensorrt
    )


# ---------------------------------------------------------------- gate


@dataclass
class GateResult(StepResult):
    run_id: str
    registered_name: str
    passed: bool
    reasons: str
    decision: dict[str, Any]
    champion_version: str | None


def _champion_nme_on(champion_source: str, trained: TrainResult, config: ExperimentConfig) -> float:
    """Re-measure a champion trained on other data on this test split, with its own ONNX and crop metadata."""
    from landmarkflow.inference import Predictor

    predictor = Predictor.load(champion_source)
    info = predictor.info
    records = _split(to_records(read_manifest(trained.manifest)), config.data.test_split)
    preds = predict_records(
        predictor.predict_crops, records, Path(trained.root), info.input_size, info.box_scale, config.eval.batch_size
    )
    gts, boxes = np.stack([r.landmarks for r in records]), np.stack([r.bbox for r in records])
    return float(per_image_nme(preds, gts, get_layout(config.data.layout), boxes, config.data.normaliser).mean())


def gate(trained: TrainResult, evaluated: EvalResult, exported: ExportResult) -> GateResult:
    """Decide promotion: NME threshold, not worse than the champion on the same data, ONNX parity."""
    config = trained.experiment_config()
    name = registered_model_name(trained.model, trained.dataset)
    champion = version_by_alias(name, CHAMPION)
    champion_nme, label = None, "champion"
    if champion is not None:
        label = f"champion v{champion.version}"
        if champion.data_hash == trained.data_hash and champion.nme is not None:
            champion_nme = champion.nme
        else:
            champion_nme = _champion_nme_on(f"models:/{name}/{champion.version}", trained, config)
            label += " (re-measured on this data)"
    decision: GateDecision = decide(
        evaluated.nme,
        exported.parity_delta,
        config.gate,
        champion_nme,
        label,
        baseline_nme=evaluated.baseline_metrics.get("nme"),
    )
    client = MlflowClient()
    client.log_metric(trained.run_id, "gate_passed", float(decision.passed))
    client.set_tag(trained.run_id, "gate", "passed" if decision.passed else "failed")
    client.set_tag(trained.run_id, "gate_reasons", decision.reasons())
    log.info("gate %s: %s", "PASSED" if decision.passed else "FAILED", decision.reasons())
    return GateResult(
        trained.run_id,
        name,
        decision.passed,
        decision.reasons(),
        decision.to_dict(),
        champion.version if champion else None,
    )


# ---------------------------------------------------------------- register / promote


@dataclass
class RegisterResult(StepResult):
    registered_name: str
    version: str
    challenger: bool


def register(trained: TrainResult, evaluated: EvalResult, exported: ExportResult, gated: GateResult) -> RegisterResult:
    """Register the ONNX model as a new version with lineage tags; alias `challenger` if it passed the gates."""
    config = trained.experiment_config()
    model_uri = log_onnx_model(trained.run_id, Path(exported.onnx_path), deploy_info(config))
    lineage = Lineage(data_hash=trained.data_hash, git_commit=git_commit(), config_hash=trained.config_hash)
    tags = {
        **lineage.tags(),
        "test_nme": f"{evaluated.nme:.6f}",
        "baseline_nme": f"{evaluated.baseline_metrics['nme']:.6f}",
        "onnx_parity_delta_nme": f"{exported.parity_delta:.3e}",
        "gate": "passed" if gated.passed else "failed",
        "gate_reasons": gated.reasons,
        "checkpoint": f"runs:/{trained.run_id}/checkpoint/{FINAL}",
    }
    version = register_version(model_uri, gated.registered_name, trained.run_id, tags)
    if gated.passed:
        set_alias(gated.registered_name, CHALLENGER, version)
    log.info(
        "registered %s v%s%s", gated.registered_name, version, " as challenger" if gated.passed else " (gate failed)"
    )
    return RegisterResult(gated.registered_name, version, gated.passed)


@dataclass
class PromoteResult(StepResult):
    registered_name: str
    champion_version: str | None
    promoted: bool
    message: str


def promote(registered: RegisterResult, gated: GateResult) -> PromoteResult:
    """Move `champion` to the new version only when every gate passed; otherwise say why it stays."""
    name = registered.registered_name
    if gated.passed:
        set_alias(name, CHAMPION, registered.version)
        message = f"{name}@{CHAMPION} -> v{registered.version} ({gated.reasons})"
        tag_version(name, registered.version, {"promoted": "true"})
        champion = registered.version
    else:
        champion = gated.champion_version
        where = f"stays at v{champion}" if champion else "is not set"
        message = f"{name}@{CHAMPION} {where}: v{registered.version} failed its gates ({gated.reasons})"
    log.info(message)
    return PromoteResult(name, champion, gated.passed, message)
