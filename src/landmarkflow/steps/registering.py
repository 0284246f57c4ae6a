"""The register step: the ONNX model as a new registry version with lineage tags, `challenger` if it passed."""

from __future__ import annotations

import logging
from pathlib import Path

from landmarkflow.registry import CHALLENGER, Lineage, git_commit, log_onnx_model, register_version, set_alias
from landmarkflow.steps.results import EvalResult, ExportResult, GateResult, RegisterResult, TrainResult

log = logging.getLogger(__name__)


def register(trained: TrainResult, evaluated: EvalResult, exported: ExportResult, gated: GateResult) -> RegisterResult:
    """Register the ONNX model as a new version with lineage tags; alias `challenger` if it passed the gates."""
    model_uri = log_onnx_model(trained.run_id, Path(exported.onnx_path))
    lineage = Lineage(data_hash=trained.data_hash, git_commit=git_commit(), config_hash=trained.config_hash)
    tags = {
        **lineage.tags(),
        "test_nme": f"{evaluated.nme:.6f}",
        "baseline_nme": f"{evaluated.baseline_metrics['nme']:.6f}",
        "onnx_parity_delta_nme": f"{exported.parity_delta:.3e}",
        "gate": "passed" if gated.passed else "failed",
        "gate_reasons": gated.reasons,
        "checkpoint": f"runs:/{trained.run_id}/checkpoint/{Path(trained.checkpoint).name}",
    }
    version = register_version(model_uri, gated.registered_name, tags)
    if gated.passed:
        set_alias(gated.registered_name, CHALLENGER, version)
    log.info(
        "registered %s v%s%s", gated.registered_name, version, " as challenger" if gated.passed else " (gate failed)"
    )
    return RegisterResult(gated.registered_name, version, gated.passed)
