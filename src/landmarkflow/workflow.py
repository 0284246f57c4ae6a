"""The pipeline's step chain in one process, for the CLI and tests (the KFP pipeline wires the same steps).

Each step's result is saved as `<workdir>/<step>.json`, the same hand-off the components use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landmarkflow import steps
from landmarkflow.config import load_config
from landmarkflow.data.validation.result import DataValidationError

DEFAULT_SYNTH = steps.SynthOptions()


@dataclass
class WorkflowResult:
    """Every step's result, plus the validation outcome that may have stopped the chain."""

    ingest: steps.IngestResult
    validation_ok: bool
    train: steps.TrainResult | None = None
    evaluate: steps.EvalResult | None = None
    export: steps.ExportResult | None = None
    gate: steps.GateResult | None = None
    register: steps.RegisterResult | None = None
    promote: steps.PromoteResult | None = None


def run_workflow(
    config_path: str | Path,
    workdir: str | Path,
    overrides: dict[str, Any] | None = None,
    synth: steps.SynthOptions | None = DEFAULT_SYNTH,
    repo_root: str | Path | None = None,
    nproc: int = 1,
) -> WorkflowResult:
    """ingest -> validate -> train -> evaluate -> export -> gate -> register -> promote.

    A failing validation raises DataValidationError before anything is trained or registered.
    """
    workdir = Path(workdir)
    config = load_config(config_path, overrides)
    ingested = steps.ingest(
        config.data.dataset, config.data.root, workdir / "manifest.parquet", synth=synth, repo_root=repo_root
    )
    ingested.save(workdir / "ingest.json")
    validation = steps.validate(ingested, workdir / "validation")
    if not validation.success:
        raise DataValidationError(validation.summary())
    result = WorkflowResult(ingest=ingested, validation_ok=True)
    result.train = steps.train(config_path, ingested, workdir / "train", overrides, nproc=nproc)
    result.train.save(workdir / "train.json")
    result.evaluate = steps.evaluate(result.train, workdir / "evaluate")
    result.evaluate.save(workdir / "evaluate.json")
    result.export = steps.export(result.train, workdir / "export")
    result.export.save(workdir / "export.json")
    result.gate = steps.gate(result.train, result.evaluate, result.export)
    result.gate.save(workdir / "gate.json")
    result.register = steps.register(result.train, result.evaluate, result.export, result.gate)
    result.register.save(workdir / "register.json")
    result.promote = steps.promote(result.register, result.gate)
    result.promote.save(workdir / "promote.json")
    return result
