"""The gate against a champion trained on other data: its NME tag belongs to another test split, so the gate
re-measures the deployed champion on this one; a champion of the same data is compared by its tag. A champion that
cannot be re-measured (it will not load, or loads but fails to run) fails the gate, not the step; a test image that
cannot be read fails the step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from mlflow.tracking import MlflowClient
from onnx import TensorProto, helper

from landmarkflow import steps
from landmarkflow.config import load_config
from landmarkflow.data.manifest import write_manifest
from landmarkflow.evaluation import predictions
from landmarkflow.evaluation.remeasure import UnusableModel, deployed_model_nme
from landmarkflow.registry import CHALLENGER, CHAMPION, log_onnx_model, register_version, set_alias, version_by_alias
from landmarkflow.steps import gating
from tests.fakes import TINY_ONNX_INFO, dot_face_record, tiny_onnx_model

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


def _champion_check(gated: steps.GateResult) -> dict:
    (check,) = [c for c in gated.decision["checks"] if c["name"] == "vs_champion"]
    return check


def test_a_champion_whose_model_is_gone_fails_the_gate_and_the_candidate_stays_out(
    candidate: steps.TrainResult, tmp_path: Path
) -> None:
    for onnx_file in (tmp_path / "artifacts").rglob("*.onnx"):
        onnx_file.unlink()
    evaluated = steps.EvalResult(candidate.run_id, {"nme": CANDIDATE_NME}, {"nme": 0.5})
    onnx_path = tiny_onnx_model(tmp_path / "candidate.onnx")
    exported = steps.ExportResult(candidate.run_id, str(onnx_path), CANDIDATE_NME, CANDIDATE_NME, 0.0, 0.0, 4, "none")
    gated = steps.gate(candidate, evaluated, exported)

    assert not gated.passed and gated.champion_version == "1"
    assert [c["name"] for c in gated.decision["checks"] if not c["passed"]] == ["vs_champion"]
    detail = _champion_check(gated)["detail"]
    assert detail.startswith("hih-synthetic@champion is v1, which cannot be re-measured on this test split")
    assert "models:/hih-synthetic/1: expected exactly one .onnx file inside, found 0" in detail
    assert "delete_registered_model_alias('hih-synthetic', 'champion')" in detail
    run = MlflowClient().get_run(candidate.run_id).data
    assert run.tags["gate"] == "failed" and run.tags["gate_reasons"] == gated.reasons == detail
    assert run.metrics["gate_passed"] == 0.0

    registered = steps.register(candidate, evaluated, exported, gated)
    promoted = steps.promote(registered, gated)
    assert not promoted.promoted and promoted.message.startswith("hih-synthetic@champion stays at v1: v2 failed")
    assert version_by_alias("hih-synthetic", CHAMPION).version == "1"
    assert version_by_alias("hih-synthetic", CHALLENGER) is None


def _new_champion(onnx_path: Path) -> None:
    """Register `onnx_path` as v2 of the champion's model, of other data as v1, and point champion at it."""
    run_id = MlflowClient().get_model_version("hih-synthetic", "1").run_id
    tags = {"data_hash": "other-data", "test_nme": str(STALE_CHAMPION_NME)}
    set_alias("hih-synthetic", CHAMPION, register_version(log_onnx_model(run_id, onnx_path), "hih-synthetic", tags))


def test_a_champion_of_another_layout_fails_the_gate_naming_both_layouts(
    candidate: steps.TrainResult, tmp_path: Path
) -> None:
    _new_champion(tiny_onnx_model(tmp_path / "wflw.onnx", replace(TINY_ONNX_INFO, layout="98", num_points=98)))
    gated = _gate(candidate)
    assert not gated.passed and gated.champion_version == "2"
    detail = _champion_check(gated)["detail"]
    assert detail.startswith("hih-synthetic@champion is v2, which cannot be re-measured on this test split")
    assert "models:/hih-synthetic/2: built for layout 98 (98 points), expected layout 68" in detail


def test_a_champion_that_loads_but_fails_to_run_fails_the_gate_naming_the_error(
    candidate: steps.TrainResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A valid graph that takes 64 px crops, whose metadata asks for 48 px ones: onnxruntime rejects every batch.
    _new_champion(tiny_onnx_model(tmp_path / "misfit.onnx", replace(TINY_ONNX_INFO, input_size=48)))
    with caplog.at_level(logging.INFO, logger=gating.__name__):
        gated = _gate(candidate)
    assert not gated.passed and gated.champion_version == "2"
    detail = _champion_check(gated)["detail"]
    assert detail.startswith("hih-synthetic@champion is v2, which cannot be re-measured on this test split")
    assert "models:/hih-synthetic/2: fails to predict the test crops: [ONNXRuntimeError]" in detail
    assert "INVALID_ARGUMENT" in detail and "Got: 48" in detail
    run = MlflowClient().get_run(candidate.run_id).data
    assert run.tags["gate"] == "failed" and run.tags["gate_reasons"] == gated.reasons == detail
    assert f"gate FAILED: {detail}" in caplog.text


def _answering_nan(path: Path) -> Path:
    """A tiny model that runs on its crops and answers NaN for every point."""
    proto = onnx.load(str(tiny_onnx_model(path)))
    proto.graph.node[-1].output[0] = "finite"
    proto.graph.initializer.append(helper.make_tensor("nan", TensorProto.FLOAT, [], [float("nan")]))
    proto.graph.node.append(helper.make_node("Mul", ["finite", "nan"], ["landmarks"]))
    onnx.save_model(proto, str(path))
    return path


def test_a_champion_answering_nan_fails_the_gate_as_unusable(candidate: steps.TrainResult, tmp_path: Path) -> None:
    _new_champion(_answering_nan(tmp_path / "nan.onnx"))
    gated = _gate(candidate)
    assert not gated.passed and gated.champion_version == "2"
    detail = _champion_check(gated)["detail"]
    assert "models:/hih-synthetic/2: answers non-finite landmarks on this test split" in detail


def test_only_the_champions_own_call_is_blamed_on_it(
    candidate: steps.TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same ValueError the model call would be blamed for, raised by our own cropping instead: the step fails.
    _new_champion(tiny_onnx_model(tmp_path / "champion.onnx"))

    def broken_crop(*args: object) -> None:
        raise ValueError("cropping broke")

    monkeypatch.setattr(predictions, "cut_views", broken_crop)
    with pytest.raises(ValueError, match="cropping broke") as raised:
        _gate(candidate)
    assert not isinstance(raised.value, UnusableModel)


@pytest.mark.parametrize(
    ("spoil", "error", "message"),
    [
        (Path.unlink, FileNotFoundError, "no such image file"),
        (lambda p: p.write_bytes(b"not a png"), OSError, "cannot read image"),
    ],
)
def test_a_test_image_that_cannot_be_read_fails_the_step_not_the_champion(
    candidate: steps.TrainResult, spoil: Callable[[Path], object], error: type[Exception], message: str
) -> None:
    spoil(Path(candidate.root) / "img2.png")
    with pytest.raises(error, match=f"img2.png: {message}"):
        _gate(candidate)
