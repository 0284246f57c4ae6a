"""The validate step: the data suite and image checks, logged as an MLflow run in the dataset's data experiment."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from landmarkflow.data.manifest import read_manifest
from landmarkflow.data.validation.result import CheckFailure, ValidationResult
from landmarkflow.data.validation.run import validate_manifest
from landmarkflow.outages import tracking_step
from landmarkflow.steps.results import IngestResult
from landmarkflow.tracking import data_experiment_name, ensure_experiment, log_metrics


@tracking_step
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
    """A `validate` run in the dataset's data experiment: verdict, counts, warnings, the HTML report and GX Data
    Docs."""
    client = MlflowClient()
    run = client.create_run(
        ensure_experiment(data_experiment_name(ingested.dataset)),
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
    log_metrics(
        client,
        run_id,
        {
            "faces": result.num_faces,
            "images": result.num_images,
            "failed_checks": len(result.failures),
            "warnings": len(result.warnings),
            "validation_seconds": result.seconds,
        },
    )
    if result.report_path is not None:
        client.log_artifacts(run_id, str(result.report_path.parent), "validation")
    client.set_terminated(run_id, "FINISHED" if result.success else "FAILED")
