"""ONNX export of HIH `predict`: onnxruntime parity at batch 1 and a dynamic batch, metadata, and the TensorRT skip."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from landmarkflow.config import load_config
from landmarkflow.export import tensorrt
from landmarkflow.export.onnx import compare_outputs, export_onnx
from landmarkflow.models.hih import HIH
from landmarkflow.models.zoo import build_model
from landmarkflow.runtime import METADATA_PREFIX, DeployInfo, open_session, run_onnx
from landmarkflow.steps.exporting import deploy_info
from tests.fresh_process import REPO
from tests.models.small_configs import SMALL_HIH

INFO = DeployInfo(model="hih", layout="68", num_points=5, input_size=64, box_scale=1.25, config_hash="0123abcd")
PARITY_PX = 1e-3
pytestmark = pytest.mark.slow  # every test reads the exports of the module's fixtures, 15-18 s each


@pytest.fixture(scope="module", params=["decimal", "fit"])
def model(request: pytest.FixtureRequest) -> HIH:
    """A small 2-stack HIH with He-initialised convs, so its maps have clear, trained-like peaks to decode; read
    through its decimal head and through the fit to its integer maps."""
    torch.manual_seed(0)
    net = build_model({**SMALL_HIH, "stacks": 2, "subpixel": request.param})
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
    return net


@pytest.fixture(scope="module")
def exported(model: HIH, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model.train()
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx", INFO)


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 3, 64, 64), dtype=np.float32)


def test_export_is_a_valid_single_file_with_named_dynamic_io(exported: Path, model: HIH) -> None:
    onnx.checker.check_model(str(exported), full_check=True)
    assert not list(exported.parent.glob("*.data")) and not list(exported.parent.glob(".*.tmp"))
    graph = onnx.load(str(exported)).graph
    assert [i.name for i in graph.input] == ["images"] and [o.name for o in graph.output] == ["landmarks"]
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    assert model.training, "export must restore the model's training mode"


@pytest.mark.parametrize("batch", [1, 5])
def test_onnxruntime_matches_predict(exported: Path, model: HIH, batch: int) -> None:
    session = open_session(exported)
    batch_images = images(batch, seed=batch)
    out = run_onnx(session, batch_images)
    model.eval()
    with torch.no_grad():
        expected = model.predict(torch.from_numpy(batch_images)).numpy()
    model.train()
    assert out.shape == (batch, 5, 2) and out.dtype == np.float32
    assert np.abs(out - expected).max() < PARITY_PX


def test_compare_outputs_reports_single_and_batch(exported: Path, model: HIH) -> None:
    diffs = compare_outputs(model, exported, images(4, seed=9))
    assert diffs["batch_size"] == 4
    assert diffs["max_abs_diff_px"] == max(diffs["max_abs_diff_px_batch1"], diffs["max_abs_diff_px_batch"])
    assert 0 <= diffs["mean_abs_diff_px"] <= diffs["max_abs_diff_px"] < PARITY_PX
    with pytest.raises(ValueError, match="N>=2"):
        compare_outputs(model, exported, images(1))


def test_deploy_info_round_trips(exported: Path) -> None:
    assert DeployInfo.from_file(exported) == INFO


def test_deploy_info_rejects_a_foreign_onnx(exported: Path, tmp_path: Path) -> None:
    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save_model(proto, str(foreign))
    with pytest.raises(ValueError, match="not a landmarkflow model"):
        DeployInfo.from_file(foreign)


def test_deploy_info_names_a_metadata_value_of_the_wrong_kind() -> None:
    props = {**INFO.to_props(), METADATA_PREFIX + "num_points": "nineteen"}
    with pytest.raises(
        ValueError, match=r"odd\.onnx: metadata landmarkflow\.num_points is 'nineteen', expected a\(n\) int"
    ):
        DeployInfo.from_props(props, "odd.onnx")


def test_tensorrt_is_skipped_without_cuda(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    available, reason = tensorrt.tensorrt_available()
    assert not available and "no CUDA device" in reason
    with caplog.at_level(logging.INFO, logger=tensorrt.__name__):
        assert tensorrt.build_tensorrt_engine(exported, tmp_path / "model.fp16.plan", "fp16") is None
    assert "fp16 engine skipped: no CUDA device" in caplog.text
    assert not (tmp_path / "model.fp16.plan").exists()


def test_tensorrt_names_a_missing_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "tensorrt" else real_find_spec(name))
    assert tensorrt.tensorrt_available() == (False, "tensorrt not installed")


def test_tensorrt_result_says_what_it_is_tied_to() -> None:
    result = tensorrt.TensorRTResult(Path("m.plan"), "fp16", "11.4.0", "NVIDIA H200", "9.0", (1, 32))
    assert str(result) == "m.plan (fp16, TensorRT 11.4.0 on NVIDIA H200, sm 9.0, batch 1-32)"


def test_fp16_names_missing_modelopt(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "modelopt" else real_find_spec(name))
    assert "nvidia-modelopt not installed" in tensorrt.precision_unavailable("fp16")
    assert tensorrt.precision_unavailable("fp32") == ""


@pytest.mark.parametrize(
    "field,value,written",
    [
        ("upright_above_deg", 10.0, "10.0"),
        ("upright_above_deg", None, "inf"),
        ("max_crop_shrink", 2.5, "2.5"),
        ("max_crop_shrink", None, "inf"),
    ],
)
def test_deploy_info_carries_the_configs_crop_options(
    exported: Path, field: str, value: float | None, written: str
) -> None:
    """A config's upright threshold and crop shrink limit reach the ONNX metadata; None (one pass, no limit) is
    written as infinity."""
    config = load_config("configs/hih_synthetic_tiny.yaml", {f"data.{field}": value})
    info = deploy_info(config)
    assert info.to_props()[f"landmarkflow.{field}"] == written
    model = onnx.load(str(exported))
    onnx.helper.set_model_props(model, info.to_props())
    assert getattr(DeployInfo.from_proto(model), field) == float(written)


def test_export_says_nothing_about_torchvision_or_pytorchs_own_deprecations(tmp_path: Path) -> None:
    """In a fresh process, where the exporter first builds its op registry: no note per torchvision op (no CPU
    build of it exists, and no model uses its ops), no FutureWarning from inside PyTorch's pytree code."""
    code = (
        "import sys, torch\n"
        "from landmarkflow.export.onnx import export_onnx\n"
        "from landmarkflow.models.zoo import build_model\n"
        "from landmarkflow.runtime import DeployInfo\n"
        "from tests.models.small_configs import SMALL_HIH\n"
        "info = DeployInfo('hih', '68', num_points=5, input_size=64, box_scale=1.25, config_hash='0123abcd')\n"
        "export_onnx(build_model(SMALL_HIH), sys.argv[1], info)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "model.onnx")], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert "torchvision" not in done.stderr and "Warning" not in done.stderr, done.stderr
