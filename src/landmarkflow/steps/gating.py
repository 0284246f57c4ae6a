"""The gate step: decide promotion (NME threshold, the mean-shape bar, the champion, ONNX parity) and log why."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.manifest import in_split, read_manifest, to_records
from landmarkflow.evaluation.gates import GateDecision, decide
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.evaluation.predictions import predict_records
from landmarkflow.layouts import get_layout
from landmarkflow.registry import CHAMPION, version_by_alias
from landmarkflow.steps.results import EvalResult, ExportResult, GateResult, TrainResult
from landmarkflow.tracking import registered_model_name

log = logging.getLogger(__name__)


def _champion_nme_on(champion_source: str, trained: TrainResult, config: ExperimentConfig) -> float:
    """Re-measure a champion trained on other data on this test split, with its own ONNX and crop metadata."""
    from landmarkflow.inference import Predictor

    predictor = Predictor.load(champion_source)
    info = predictor.info
    records = in_split(to_records(read_manifest(trained.manifest)), config.data.test_split)
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
