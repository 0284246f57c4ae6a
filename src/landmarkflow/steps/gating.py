"""The gate step: decide promotion (NME thresholds, the mean-shape bar, the champion, ONNX parity) and log why."""

from __future__ import annotations

import logging
from collections.abc import Callable

from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig
from landmarkflow.evaluation.gates import GateDecision, decide
from landmarkflow.outages import tracking_step
from landmarkflow.registry import CHAMPION, VersionInfo, version_by_alias
from landmarkflow.steps.results import (
    EvalResult,
    ExportResult,
    GateResult,
    TrainResult,
    require_results_of,
    require_same_manifest,
)
from landmarkflow.tracking import registered_model_name

log = logging.getLogger(__name__)


@tracking_step
def gate(
    trained: TrainResult,
    evaluated: EvalResult,
    exported: ExportResult,
    test_data: Callable[[], TrainResult] | None = None,
) -> GateResult:
    """Decide promotion: NME threshold, not worse than the champion on the same data, ONNX parity.

    A champion trained on other data is re-measured on this test split, read from `test_data()`'s root
    (default: `trained.root`): a pod fetches those images only when that happens.
    """
    require_results_of(trained.run_id, evaluate=evaluated, export=exported)
    require_same_manifest(trained)  # a champion from other data is re-measured on this manifest's test split
    name = registered_model_name(trained.model, trained.dataset)
    config = trained.experiment_config()
    champion = version_by_alias(name, CHAMPION)
    champion_nme, label, unmeasured = None, "champion", None
    if champion is not None:
        label = f"champion v{champion.version}"
        if champion.data_hash == trained.data_hash and champion.nme is not None:
            champion_nme = champion.nme
        else:
            label += " (re-measured on this data)"
            champion_nme, unmeasured = _remeasured(champion, trained, config, test_data)
    decision: GateDecision = decide(
        evaluated.nme,
        exported.parity_delta,
        config.gate,
        champion_nme,
        label,
        baseline_nme=evaluated.baseline_metrics.get("nme"),
        real_nme=evaluated.real_metrics.get("nme"),
        champion_unmeasured=unmeasured,
    )
    if config.gate.max_real_nme is not None and not evaluated.real_metrics:
        log.info("gate.max_real_nme is set, but evaluate measured no real faces: that gate is not applied")
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
        config.gate.champion_tolerance,
    )


def _remeasured(
    champion: VersionInfo,
    trained: TrainResult,
    config: ExperimentConfig,
    test_data: Callable[[], TrainResult] | None,
) -> tuple[float | None, str | None]:
    """The champion's NME on this test split, or (None, why) when the champion cannot be measured: then the gate
    fails rather than the step, so the candidate is neither promoted uncompared nor left without an outcome."""
    # Imported here: it needs torch and onnxruntime, which the usual gate does without.
    from landmarkflow.evaluation.remeasure import UnusableModel, deployed_model_nme

    located = test_data() if test_data is not None else trained
    model_ref = f"models:/{champion.name}/{champion.version}"
    try:
        return deployed_model_nme(model_ref, located.manifest, located.root, config), None
    except UnusableModel as exc:
        return None, _unmeasured_reason(champion, str(exc))


def _unmeasured_reason(champion: VersionInfo, why: str) -> str:
    """Why the champion gate failed, and how the user gets the model past it."""
    alias = f"{champion.name}@{CHAMPION}"
    return (
        f"{alias} is v{champion.version}, which cannot be re-measured on this test split ({why}), so this candidate "
        f"is not compared with it and not promoted: point {alias} at a version that runs, or remove it (MLflow UI, "
        f"Models tab; or MlflowClient().delete_registered_model_alias({champion.name!r}, {CHAMPION!r})), then run "
        "gate, register and promote again for this run, or retrain with --force"
    )
