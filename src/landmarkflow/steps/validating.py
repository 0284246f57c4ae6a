"""The validate step: the data suite, image checks and drift from the champions' data, logged as an MLflow run in the
dataset's data experiment."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from landmarkflow.config import load_config
from landmarkflow.data.manifest import read_manifest
from landmarkflow.data.validation.drift import (
    DRIFT_FILE,
    DRIFT_PLOT,
    PROFILE_FILE,
    DataProfile,
    compare,
    plot_drift,
    profile_faces,
)
from landmarkflow.data.validation.rendering import write_html
from landmarkflow.data.validation.result import CheckFailure, ValidationResult
from landmarkflow.data.validation.run import record_drift, validate_manifest
from landmarkflow.fileio import atomic_write_text
from landmarkflow.outages import tracking_step
from landmarkflow.steps.results import FreshnessResult, IngestResult
from landmarkflow.tracking import data_experiment_name, ensure_experiment, log_metrics

REPORTS = "validation"
"""The artifact folder of a validate run: the HTML report, GX Data Docs, the data profile and the drift report."""
PROFILE_PATH = f"{REPORTS}/{PROFILE_FILE}"
PROFILE_TAG = "data_profile"
"""Set (to PROFILE_PATH) on a validate run that logged the profile of its data, for a later drift check to find."""


@tracking_step
def validate(
    ingested: IngestResult, report_dir: str | Path, freshness: FreshnessResult | None = None
) -> ValidationResult:
    """Run the data suite and image checks, with the files ingest could not read as failures of their checks; on
    valid data, profile it and, given the freshness check, compare it with the data of each retrained model's
    champion (a config's data.max_drift can fail the check). The outcome with its reports is logged as an MLflow
    run; the caller decides whether a failure stops the pipeline."""
    by_check: dict[str, list[str]] = {}
    for problem in ingested.problems:
        by_check.setdefault(problem["check"], []).append(problem["message"])
    reader_failures = [CheckFailure(check, len(examples), examples) for check, examples in by_check.items()]
    frame = read_manifest(ingested.manifest)
    report_dir = Path(report_dir)
    for stale in (PROFILE_FILE, DRIFT_FILE, DRIFT_PLOT):  # an earlier run's, in a reused folder: not this data's
        (report_dir / stale).unlink(missing_ok=True)
    result = validate_manifest(frame, Path(ingested.root), report_dir, reader_failures=reader_failures)
    if result.success:  # invalid data stops the run: its profile would never be a champion's reference
        profile = profile_faces(frame, ingested.data_hash)
        profile.save(report_dir / PROFILE_FILE)
        if freshness is not None:
            _measure_drift(profile, freshness, report_dir, result)
    # Tagged only when the data passed, drift included: data refused here is never trained on, so its profile is
    # never a champion's reference (it stays among the run's reports).
    _log_validation(result, ingested, profiled=result.success)
    return result


def _measure_drift(
    profile: DataProfile, freshness: FreshnessResult, report_dir: Path, result: ValidationResult
) -> None:
    """Compare with the data of each retrained model's champion (one comparison per distinct data hash)."""
    labels_by_hash: dict[str, list[str]] = {}
    limits: dict[str, tuple[float, str]] = {}
    for decision in freshness.decisions:
        reference = decision["champion_data_hash"]
        if not decision["retrain"] or not reference or reference == profile.data_hash:
            continue
        label = f"{decision['model']} v{decision['champion_version']}"
        labels_by_hash.setdefault(reference, []).append(label)
        limit = load_config(decision["config"]).data.max_drift
        if limit is not None:
            limits[label] = (limit, decision["config"])
    if not labels_by_hash:
        return
    reports, references = [], {}
    for reference_hash, labels in labels_by_hash.items():
        reference = fetch_profile(freshness.dataset, reference_hash)
        if reference is None:
            result.warnings.append(
                f"drift not measured for {', '.join(labels)}: no validate run in MLflow logged a profile of the data "
                f"it was trained on ({reference_hash})"
            )
            continue
        reports.append(compare(profile, reference, labels))
        references[", ".join(labels)] = reference
    if not reports:
        if result.report_path is not None:
            write_html(result, result.report_path)
        return
    plot_drift(profile, references, report_dir / DRIFT_PLOT)
    atomic_write_text(report_dir / DRIFT_FILE, json.dumps([report.to_dict() for report in reports], indent=1))
    record_drift(result, reports, limits)


def fetch_profile(dataset: str, data_hash: str) -> DataProfile | None:
    """The profile of the data with `data_hash`, as the newest validate run of it logged it; None when none did."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(data_experiment_name(dataset))
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.step = 'validate' and tags.data_hash = '{data_hash}' and tags.{PROFILE_TAG} = '{PROFILE_PATH}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    with tempfile.TemporaryDirectory(prefix="landmarkflow-profile-") as scratch:
        path = client.download_artifacts(runs[0].info.run_id, PROFILE_PATH, scratch)
        return DataProfile.load(path)


def _log_validation(result: ValidationResult, ingested: IngestResult, profiled: bool) -> None:
    """A `validate` run in the dataset's data experiment: verdict, counts, warnings, drift, the HTML report, GX Data
    Docs, the data profile and the drift report with its picture."""
    client = MlflowClient()
    moved = sorted({f.feature for report in result.drift for f in report.moved})
    tags = {
        "step": "validate",
        "dataset": ingested.dataset,
        "data_hash": ingested.data_hash,
        "validation": "passed" if result.success else "failed",
        "failed_checks": ",".join(f.check for f in result.failures) or "none",
        "drift": (",".join(moved) or "none") if result.drift else "not measured",
    }
    if profiled:
        tags[PROFILE_TAG] = PROFILE_PATH
    run = client.create_run(
        ensure_experiment(data_experiment_name(ingested.dataset)), run_name=f"validate {ingested.dataset}", tags=tags
    )
    run_id = run.info.run_id
    metrics = {
        "faces": result.num_faces,
        "images": result.num_images,
        "failed_checks": len(result.failures),
        "warnings": len(result.warnings),
        "validation_seconds": result.seconds,
    }
    if result.drift:
        metrics["drift_max_ks"] = max(report.max_ks for report in result.drift)
    log_metrics(client, run_id, metrics)
    if result.report_path is not None:
        client.log_artifacts(run_id, str(result.report_path.parent), REPORTS)
    client.set_terminated(run_id, "FINISHED" if result.success else "FAILED")
