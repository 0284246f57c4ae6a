"""The torch-free runtime: it imports without torch or mlflow, its crop input is bit-identical to torch's, and the
deploy metadata reads the same from a proto, a file and a session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from landmarkflow.runtime import DeployInfo, crop_to_input, execution_providers, open_session, run_onnx
from tests.fakes import TINY_ONNX_INFO, tiny_onnx_model
from tests.fresh_process import imported_after


def test_runtime_and_predict_import_without_torch_mlflow_or_onnx() -> None:
    assert imported_after("import landmarkflow.runtime, landmarkflow.inference", ["torch", "mlflow", "onnx"]) == []


def test_crop_input_is_bit_identical_to_torch_division() -> None:
    every_byte = np.arange(96 * 96 * 3) % 256
    crop = np.random.default_rng(0).permutation(every_byte).astype(np.uint8).reshape(96, 96, 3)
    model_input = crop_to_input(crop)
    from_torch = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().div_(255.0).numpy()
    assert model_input.shape == (3, 96, 96) and model_input.dtype == np.float32
    np.testing.assert_array_equal(model_input.view(np.uint32), from_torch.view(np.uint32))
    assert model_input.transpose(1, 2, 0).flags.c_contiguous, "channels-last memory, as evaluation feeds torch"


@pytest.mark.parametrize("crop", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)])
def test_crop_input_rejects_what_is_not_a_uint8_rgb_crop(crop: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected an HxWx3 uint8 RGB crop"):
        crop_to_input(crop)


def test_deploy_info_reads_alike_from_proto_file_and_session(tmp_path: Path) -> None:
    path = tiny_onnx_model(tmp_path / "tiny.onnx")
    session = open_session(path)
    assert DeployInfo.from_file(path) == TINY_ONNX_INFO
    assert DeployInfo.from_proto(onnx.load(str(path))) == TINY_ONNX_INFO
    assert DeployInfo.from_session(session) == TINY_ONNX_INFO
    images = np.random.default_rng(1).random((2, 3, 64, 64), dtype=np.float32)
    np.testing.assert_array_equal(run_onnx(session, images), images.reshape(2, -1)[:, : 68 * 2].reshape(2, 68, 2))


def test_providers_prefer_cuda_and_keep_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert execution_providers()[-1] == "CPUExecutionProvider"
    everything = ["TensorrtExecutionProvider", "CPUExecutionProvider", "CUDAExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: everything)
    assert execution_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("budget", "threads"), [("1", 1), ("3", 3), (None, 0), ("", 0), ("all", 0), ("4,2", 0), ("0", 0), ("-2", 0)]
)
def test_omp_num_threads_bounds_the_sessions_threads(
    budget: str | None, threads: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What bounds PyTorch bounds onnxruntime; unset or not a count, onnxruntime sizes its pool itself (0)."""
    if budget is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", budget)
    session = open_session(tiny_onnx_model(tmp_path / "tiny.onnx"))
    assert session.get_session_options().intra_op_num_threads == threads


def test_a_file_onnxruntime_cannot_load_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_text("not a model")
    with pytest.raises(ValueError, match=r"^models:/x@champion: onnxruntime cannot load garbage\.onnx"):
        open_session(garbage, "models:/x@champion")
