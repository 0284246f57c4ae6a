"""The register step: the ONNX model as a registry version with lineage tags, `challenger` if it passed (and
not `challenger` if it failed, whatever an earlier gate of its run said).

A retry of the step (after it died, or after the server went away mid-step) finds the version its training run
already has instead of making a second one: the ONNX is logged before the version is created, and the version is
created together with all its tags, so an existing version is complete; only the alias may be missing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlflow.tracking import MlflowClient

from landmarkflow.alias_lock import alias_lock
from landmarkflow.outages import tracking_step
from landmarkflow.registry import (
    CHALLENGER,
    GATE_TAG,
    GIT_COMMIT_TAG,
    NME_TAG,
    Lineage,
    delete_version,
    get_version,
    git_commit,
    log_onnx_model,
    register_version,
    version_by_alias,
    versions_of_run,
)
from landmarkflow.steps.results import (
    EvalResult,
    ExportResult,
    GateResult,
    RegisterResult,
    TrainResult,
    require_results_of,
)

log = logging.getLogger(__name__)


@tracking_step
def register(trained: TrainResult, evaluated: EvalResult, exported: ExportResult, gated: GateResult) -> RegisterResult:
    """Register the ONNX model as the version of this training run with lineage tags (once, however often the step
    runs); alias `challenger` if it passed the gates and no newer version holds it, and take `challenger` from it if
    it failed them (an earlier gate of the run may have passed)."""
    require_results_of(trained.run_id, evaluate=evaluated, export=exported, gate=gated)
    name = gated.registered_name
    trained_at = MlflowClient().get_run(trained.run_id).data.tags.get(GIT_COMMIT_TAG) or git_commit()  # training's
    lineage = Lineage(data_hash=trained.data_hash, git_commit=trained_at, config_hash=trained.config_hash)
    tags = {
        **lineage.tags(),
        NME_TAG: f"{evaluated.nme:.6f}",
        "baseline_nme": f"{evaluated.baseline_metrics['nme']:.6f}",
        "onnx_parity_delta_nme": f"{exported.parity_delta:.3e}",
        GATE_TAG: "passed" if gated.passed else "failed",
        "gate_reasons": gated.reasons,
        "checkpoint": f"runs:/{trained.run_id}/checkpoint/{Path(trained.checkpoint).name}",
    }
    earlier = versions_of_run(name, trained.run_id)
    if not earlier:
        register_version(log_onnx_model(trained.run_id, Path(exported.onnx_path)), name, tags)
    kept, *duplicates = earlier or versions_of_run(name, trained.run_id)
    for duplicate in duplicates:
        log.warning(
            "%s v%s duplicates v%s of run %s: deleting it", name, duplicate.version, kept.version, trained.run_id
        )
        delete_version(name, duplicate.version)
    version = kept.version
    changed = _changed(tags, kept.tags)  # none on a version just created with them
    if earlier:
        log.info("%s v%s of run %s was registered by an earlier try; completing it", name, version, trained.run_id)
    challenger = False
    holder = f"register {name} v{version} (run {trained.run_id})"
    # A new version was created with its tags in one request. An existing one (the run gated again, or a retry) gets
    # its changed tags under the alias lock, where promote reads the gate tag and moves champion: a promotion decides
    # on this gate or on the earlier one, never moves champion to a version whose gate=failed is landing meanwhile.
    # What changed is read again under the lock: another register of this run (a second gate) may have tagged it
    # since, and the version must end with one gate's tags and that gate's alias, not a mix of two.
    if changed or gated.passed or _holds_challenger(name, version):
        with alias_lock(name, holder, trained.run_id) as lock:
            lock.tag_version(version, _changed(tags, get_version(name, version).tags))
            if gated.passed:
                current = version_by_alias(name, CHALLENGER)
                if current is None or int(current.version) <= int(version):
                    lock.move_alias(CHALLENGER, version)
                    challenger = True
            elif _holds_challenger(name, version):  # an earlier gate of this run passed: no alias may say so now
                lock.remove_alias(CHALLENGER)
                log.info("%s v%s failed its gate this time: no longer challenger", name, version)
    outcome = "as challenger" if challenger else "(a newer version is challenger)" if gated.passed else "(gate failed)"
    log.info("registered %s v%s %s", name, version, outcome)
    return RegisterResult(name, version, challenger)


def _changed(tags: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in tags.items() if current.get(key) != value}


def _holds_challenger(name: str, version: str) -> bool:
    current = version_by_alias(name, CHALLENGER)
    return current is not None and current.version == version
