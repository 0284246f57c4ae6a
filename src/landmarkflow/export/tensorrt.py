"""TensorRT engine from an exported ONNX file: GPU only, skipped with a stated reason everywhere else.

TensorRT 11 builds strongly typed networks only: the builder has no FP16/INT8 flags, so the ONNX's own types
decide the precision. An FP16 engine is therefore built from an ONNX that NVIDIA ModelOpt AutoCast converted
first; without ModelOpt there is no FP16 engine, and the reason says so. TF32 is switched off where the builder
still has the flag, so that "fp32" means float32 arithmetic, as in onnxruntime. Engines are tied to the GPU
architecture and the TensorRT version they were built with, so this runs on the target GPU type, never in CPU CI.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from landmarkflow.config import EnginePrecision
from landmarkflow.fileio import atomic_write_bytes
from landmarkflow.runtime import DeployInfo

log = logging.getLogger(__name__)

MIN_BATCH, OPT_BATCH, MAX_BATCH = 1, 8, 32
WORKSPACE_BYTES = 1 << 30
FP32_DECODE_OPS = ["ReduceMin", "Log"]
"""Kept in FP32 by AutoCast: the decode's map floor and log, whose small values FP16 would flush."""


@dataclass(frozen=True)
class TensorRTResult:
    """A built engine and what it is tied to."""

    engine_path: Path
    precision: str
    tensorrt_version: str
    device_name: str
    compute_capability: str
    batch_range: tuple[int, int]

    def __str__(self) -> str:
        low, high = self.batch_range
        return (
            f"{self.engine_path} ({self.precision}, TensorRT {self.tensorrt_version} on {self.device_name}, "
            f"sm {self.compute_capability}, batch {low}-{high})"
        )


def tensorrt_available() -> tuple[bool, str]:
    """(True, what will build) when a CUDA device and an importable tensorrt are here, else (False, why not)."""
    reasons = []
    if not torch.cuda.is_available():
        reasons.append("no CUDA device")
    if importlib.util.find_spec("tensorrt") is None:
        reasons.append("tensorrt not installed")
    if reasons:
        return False, "; ".join(reasons)
    try:
        import tensorrt as trt
    except Exception as exc:  # a broken install (missing CUDA libraries) fails here, not at find_spec
        return False, f"tensorrt not importable ({exc})"
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(0)}"


def precision_unavailable(precision: EnginePrecision) -> str:
    """'' when an engine of `precision` can be built here (given TensorRT), else why not."""
    if precision == "fp16" and importlib.util.find_spec("modelopt") is None:
        return "nvidia-modelopt not installed (TensorRT 11 has no FP16 builder flag; FP16 needs AutoCast)"
    return ""


def _autocast_fp16(onnx_path: Path, out_path: Path) -> None:
    """Write an FP16 (mixed) copy of the ONNX with FP32 I/O."""
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision

    converted = convert_to_mixed_precision(
        onnx_path=str(onnx_path), low_precision_type="fp16", keep_io_types=True, op_types_to_exclude=FP32_DECODE_OPS
    )
    onnx.save_model(converted, str(out_path))


def _build(trt: Any, onnx_path: Path, input_name: str, input_size: int) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 11 is always strongly typed; earlier versions need the flag for an AutoCast ONNX to stay FP16.
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strongly_typed is None else 1 << int(strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse the ONNX: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if hasattr(trt.BuilderFlag, "TF32"):  # on by default: float32 convolutions in 10-bit-mantissa TF32
        config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    shapes = [(batch, 3, input_size, input_size) for batch in (MIN_BATCH, OPT_BATCH, MAX_BATCH)]
    profile.set_shape(input_name, *shapes)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    return bytes(serialized)


def build_tensorrt_engine(
    onnx_path: str | Path, engine_path: str | Path, precision: EnginePrecision
) -> TensorRTResult | None:
    """Build a serialized engine for dynamic batch 1..32 at the model's input size; None (logged) where it cannot
    be built here: no GPU, no tensorrt, or FP16 without ModelOpt."""
    available, reason = tensorrt_available()
    reason = reason if not available else precision_unavailable(precision)
    if not available or reason:
        log.info("TensorRT %s engine skipped: %s", precision, reason)
        return None
    import tensorrt as trt

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    info = DeployInfo.from_file(onnx_path)
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=engine_path.parent) as tmp:
        source = onnx_path
        if precision == "fp16":
            source = Path(tmp) / "model.fp16.onnx"
            _autocast_fp16(onnx_path, source)
        engine = _build(trt, source, info.input_name, info.input_size)
    atomic_write_bytes(engine_path, engine)
    major, minor = torch.cuda.get_device_capability(0)
    device = torch.cuda.get_device_name(0)
    return TensorRTResult(engine_path, precision, trt.__version__, device, f"{major}.{minor}", (MIN_BATCH, MAX_BATCH))
