"""TensorRT engines compared with onnxruntime: the per-precision tolerances, the keep/reject/skip decision on the test
split, latency tables, and predict's choice of runtime. On CPU the "engine" is an onnxruntime session on a copy of
a tiny ONNX (exact, so kept) or one that answers half a pixel off (rejected); the GPU itself runs in bench/gpu_check.sh.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow.config import ConfigError, load_config
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records
from landmarkflow.export.engine_checks import (
    KEPT,
    REJECTED,
    SKIPPED,
    EngineCheck,
    check_engines,
    within_tolerance,
)
from landmarkflow.export.engine_runner import EngineRunner
from landmarkflow.export.gpu_checks import GpuChecks
from landmarkflow.export.latency import latency_table
from landmarkflow.export.tensorrt import TensorRTResult
from landmarkflow.geometry import CropSpec
from landmarkflow.inference import Predictor
from landmarkflow.layouts import get_layout
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.runtime import engine_file, open_session, run_onnx
from landmarkflow.steps.exporting import ENGINE_ARTIFACTS, log_gpu_checks
from landmarkflow.tracking import ensure_experiment
from tests.fakes import dot_face_record, tiny_onnx_model

CONFIG = Path("configs/hih_synthetic_tiny.yaml")


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx_model(tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="module")
def test_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FaceRecord]]:
    root = tmp_path_factory.mktemp("faces")
    return root, [dot_face_record(root, index, "test") for index in range(6)]


def test_tolerances_are_stated_per_precision_in_the_config() -> None:
    export = load_config(CONFIG).export
    assert export.engine_tolerance == {"fp32": 2e-4, "fp16": 2e-3}
    assert export.latency_batches == (1, 16)
    assert load_config(CONFIG, {"export.engine_tolerance": {"fp32": 1e-3}}).export.engine_tolerance == {"fp32": 1e-3}
    with pytest.raises(ConfigError, match=r"export\.engine_tolerance\.int8"):
        load_config(CONFIG, {"export.engine_tolerance": {"int8": 1e-2}})
    with pytest.raises(ConfigError, match=r"export\.engine_tolerance.*must be >= 0"):
        load_config(CONFIG, {"export.engine_tolerance": {"fp16": -1.0}})
    with pytest.raises(ConfigError, match=r"export\.latency_batches.*batch sizes >= 1"):
        load_config(CONFIG, {"export.latency_batches": [0, 16]})


def test_within_tolerance_is_the_absolute_nme_difference() -> None:
    assert within_tolerance(0.0412, 0.0410, 2e-3) == (True, pytest.approx(2e-4))
    assert within_tolerance(0.0390, 0.0410, 1e-3) == (False, pytest.approx(-2e-3))
    assert within_tolerance(float("nan"), 0.04, 1.0)[0] is False


def _copy_as_engine(onnx_path: Path, engine_path: Path, precision: str) -> TensorRTResult | None:
    """A stand-in builder: the 'engine' is the ONNX itself; no fp16 here, as without ModelOpt."""
    if precision == "fp16":
        return None
    shutil.copyfile(onnx_path, engine_path)
    return TensorRTResult(engine_path, precision, "11.4.0", "NVIDIA H200", "9.0", (1, 32))


def _ort_runner(offset_px: float) -> Callable[[Path], CropPredictor]:
    def runner(path: Path) -> CropPredictor:
        session = open_session(path)
        return lambda crops: run_onnx(session, crops) + np.float32(offset_px)

    return runner


def test_engines_are_kept_within_their_tolerance_and_deleted_beyond(
    onnx_path: Path, test_split: tuple[Path, list[FaceRecord]], tmp_path: Path
) -> None:
    root, records = test_split
    layout = get_layout("68")

    def nme_of(predict: CropPredictor) -> float:
        return mean_nme(predict_records(predict, records, root, CropSpec(64, 1.25, math.inf), 4), records, layout, None)

    onnx_nme = nme_of(_ort_runner(0.0)(onnx_path))
    out = tmp_path / "export"
    out.mkdir()
    (out / engine_file("fp32")).write_bytes(b"an earlier export's engine")
    tolerances = {"fp32": 2e-4, "fp16": 2e-3}

    exact = check_engines(onnx_path, out, tolerances, onnx_nme, nme_of, _copy_as_engine, _ort_runner(0.0))
    assert [(c.precision, c.status) for c in exact] == [("fp32", KEPT), ("fp16", SKIPPED)]
    assert exact[0].delta_nme == 0.0 and exact[0].engine == str(out / "model.fp32.plan")
    assert (out / "model.fp32.plan").read_bytes() == onnx_path.read_bytes()
    assert (exact[0].tensorrt_version, exact[0].device_name) == ("11.4.0", "NVIDIA H200")
    assert "fp16 skipped" in str(exact[1]) and exact[1].delta_nme is None

    off = check_engines(onnx_path, out, {"fp32": 2e-4}, onnx_nme, nme_of, _copy_as_engine, _ort_runner(0.5))
    (check,) = off
    assert check.status == REJECTED and abs(check.delta_nme) > 2e-4 and check.engine == ""
    assert "fp32 rejected: |dNME|" in str(check)
    assert sorted(p.name for p in out.iterdir()) == [], "a rejected engine, and the earlier one, are gone"


def test_engine_runner_says_why_it_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"model\.fp16\.plan: cannot run a TensorRT engine here: no CUDA device"):
        EngineRunner(tmp_path / "model.fp16.plan")


def test_latency_table_times_every_runtime_at_every_batch() -> None:
    def shape_only(crops: np.ndarray) -> np.ndarray:
        return np.zeros((len(crops), 68, 2), np.float32)

    table = latency_table({"a": shape_only, "b": shape_only}, 32, (1, 16), runs=3, warmup=1)
    assert list(table) == ["a_ms_batch1", "b_ms_batch1", "a_ms_batch16", "b_ms_batch16"]
    assert all(value >= 0 for value in table.values())


def test_predict_uses_onnxruntime_when_the_engine_cannot_run(
    onnx_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    folder = tmp_path / "bundle"
    folder.mkdir()
    shutil.copyfile(onnx_path, folder / "model.onnx")
    assert Predictor.load(folder).backend == "onnxruntime (CPUExecutionProvider)"
    (folder / engine_file("fp16")).write_bytes(b"not loadable without a GPU")
    predictor = Predictor.load(folder)
    assert predictor.engine is None
    assert predictor.backend.startswith("onnxruntime (CPUExecutionProvider); model.fp16.plan not used: no CUDA device")
    crops = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    np.testing.assert_array_equal(predictor.predict_crops(crops), run_onnx(open_session(onnx_path), crops))


def test_kept_engines_are_logged_with_what_they_are_tied_to(tmp_path: Path) -> None:
    client = MlflowClient()
    run_id = client.create_run(ensure_experiment("landmarks/engines")).info.run_id
    kept = tmp_path / engine_file("fp32")
    kept.write_bytes(b"engine bytes")
    tied = {"tensorrt_version": "11.4.0", "device_name": "NVIDIA H200", "compute_capability": "9.0"}
    checks = GpuChecks(
        [
            EngineCheck("fp32", KEPT, 2e-4, 1e-5, str(kept), **tied),
            EngineCheck("fp16", REJECTED, 2e-3, -3e-3, **tied),
        ],
        {"torch_eager_ms_batch1": 2.5, "tensorrt_fp32_ms_batch1": 0.4},
        {"onnxruntime_cuda": "no CUDAExecutionProvider"},
    )
    log_gpu_checks(client, run_id, checks)
    run = client.get_run(run_id)
    assert [a.path for a in client.list_artifacts(run_id, ENGINE_ARTIFACTS)] == ["tensorrt/model.fp32.plan"]
    tags, metrics = run.data.tags, run.data.metrics
    assert (tags["tensorrt_version"], tags["tensorrt_gpu"], tags["tensorrt_compute_capability"]) == tuple(tied.values())
    assert tags["tensorrt_fp16"].startswith("fp16 rejected: |dNME| 3.00e-03 vs tolerance 2.00e-03")
    assert tags["latency_onnxruntime_cuda"] == "not timed: no CUDAExecutionProvider"
    assert metrics["tensorrt_fp32_delta_nme"] == 1e-5 and metrics["tensorrt_fp16_delta_nme"] == 3e-3
    assert metrics["latency_tensorrt_fp32_ms_batch1"] == 0.4
