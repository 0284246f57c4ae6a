"""The gate against a champion trained on other data: its NME tag belongs to another test split, so the gate
re-measures the deployed champion on this one; a champion of the same data is compared by its tag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from landmarkflow import steps
from landmarkflow.config import load_config
from landmarkflow.data.manifest import write_manifest
from landmarkflow.evaluation.remeasure import deployed_model_nme
from landmarkflow.registry import CHAMPION, log_onnx_model, register_version, set_alias
from tests.fakes import dot_face_record, tiny_onnx_model

STALE_CHAMPION_NME = 0.01
"""The champion's tag: far better than the candidate, so comparing with the tag would fail the candidate."""
CANDIDATE_NME = 0.2


@pytest.fixture
def candidate(tmp_path: Path) -> steps.TrainResult:
    """A candidate trained on `this-data`, with the champion `hih-synthetic` v1 registered from `other-data`."""
    root = tmp_path / "data"
    root.mkdir()
    records = [dot_face_record(root, index, "train" if index < 2 else "test") for index in range(6)]
    manifest = write_manifest(records, tmp_path / "manifest.parquet")
    client = MlflowClient()
    experiment = client.create_experiment("landmarks/synthetic", (tmp_path / "artifacts").as_uri())
    champion_run = client.create_run(experiment).info.run_id
    model_uri = log_onnx_model(champion_run, tiny_onnx_model(tmp_path / "champion.onnx"))
    tags = {"data_hash": "other-data", "test_nme": str(STALE_CHAMPION_NME)}
    set_alias("hih-synthetic", CHAMPION, register_version(model_uri, "hih-synthetic", tags))
    config = load_config("configs/hih_synthetic_tiny.yaml", {"gate.min_baseline_ratio": None, "gate.max_nme": 1.0})
    return steps.TrainResult(
        run_id=client.create_run(experiment).info.run_id,
        checkpoint="unused.pt",
        config_path="configs/hih_synthetic_tiny.yaml",
        config_hash=config.config_hash(),
        model="hih",
        dataset="synthetic",
        data_hash="this-data",
        manifest=str(manifest),
        root=str(root),
        seconds=1.0,
        final_val_nme=CANDIDATE_NME,
        config=config.to_dict(),
    )


def _gate(trained: steps.TrainResult, test_data: Callable[[], steps.TrainResult] | None = None) -> steps.GateResult:
    evaluated = steps.EvalResult(trained.run_id, {"nme": CANDIDATE_NME}, {"nme": 0.5})
    exported = steps.ExportResult(trained.run_id, "unused.onnx", CANDIDATE_NME, CANDIDATE_NME, 0.0, 0.0, 4, "skipped")
    return steps.gate(trained, evaluated, exported, test_data)


def test_a_champion_of_other_data_is_re_measured_on_this_test_split(candidate: steps.TrainResult) -> None:
    remeasured = deployed_model_nme(
        "models:/hih-synthetic/1", candidate.manifest, candidate.root, candidate.experiment_config()
    )
    assert remeasured > CANDIDATE_NME > STALE_CHAMPION_NME
    # As in a pod: the test split is fetched (here: found moved elsewhere) only when the gate re-measures.
    fetched = Path(candidate.root).rename(Path(candidate.root).with_name("fetched"))
    gated = _gate(candidate, lambda: replace(candidate, root=str(fetched)))
    assert gated.passed and gated.champion_version == "1"
    (check,) = [c for c in gated.decision["checks"] if c["name"] == "vs_champion"]
    assert f"vs champion v1 (re-measured on this data) {100 * remeasured:.3f}%" in check["detail"]


def test_a_champion_of_the_same_data_is_compared_by_its_tag(candidate: steps.TrainResult) -> None:
    candidate.data_hash = "other-data"
    gated = _gate(candidate, lambda: pytest.fail("no re-measure, so no test data to fetch"))
    assert not gated.passed
    assert f"vs champion v1 {100 * STALE_CHAMPION_NME:.3f}%" in gated.reasons and "worse" in gated.reasons


def test_the_real_face_gate_reads_the_real_nme_evaluate_measured(candidate: steps.TrainResult) -> None:
    candidate.data_hash = "other-data"
    candidate.config = {**candidate.config, "gate": {**candidate.config["gate"], "max_real_nme": 0.1}}
    evaluated = steps.EvalResult(candidate.run_id, {"nme": CANDIDATE_NME}, {"nme": 0.5}, real_metrics={"nme": 0.3})
    exported = steps.ExportResult(candidate.run_id, "unused.onnx", CANDIDATE_NME, CANDIDATE_NME, 0.0, 0.0, 4, "skipped")
    gated = steps.gate(candidate, evaluated, exported)
    (check,) = [c for c in gated.decision["checks"] if c["name"] == "real_nme_threshold"]
    assert not check["passed"] and "real-face NME 30.000% >= threshold 10.000%" in gated.reasons
    unmeasured = _gate(candidate)
    assert "real_nme_threshold" not in [c["name"] for c in unmeasured.decision["checks"]]
