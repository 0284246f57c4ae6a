"""What export measures on a GPU: TensorRT engines per precision against onnxruntime (export/engine_checks.py),
and the latency of every runtime here at the config's batch sizes. The export step and bench/gpu_check.py both
call `run_gpu_checks`, so the numbers the bench reports are the ones a pipeline run logs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from landmarkflow.config import ExperimentConfig
from landmarkflow.evaluation.predictions import torch_predictor
from landmarkflow.export.engine_checks import EngineCheck, check_engines
from landmarkflow.export.engine_runner import EngineRunner
from landmarkflow.export.latency import latency_table
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.runtime import open_session, run_onnx

CUDA_PROVIDER = "CUDAExecutionProvider"


@dataclass
class GpuChecks:
    """The engines' outcomes, `{runtime}_ms_batch{N}` latencies, and why a runtime was not timed."""

    engines: list[EngineCheck]
    latency_ms: dict[str, float]
    not_timed: dict[str, str] = field(default_factory=dict)


def onnxruntime_cuda(onnx_path: Path) -> tuple[CropPredictor | None, str]:
    """An onnxruntime predictor that runs on CUDA, or (None, why not)."""
    session = open_session(onnx_path)
    if CUDA_PROVIDER not in session.get_providers():
        providers = ", ".join(session.get_providers())
        return None, f"onnxruntime has no {CUDA_PROVIDER} here (only {providers}; it needs onnxruntime-gpu)"
    return lambda crops: run_onnx(session, crops), ""


def run_gpu_checks(
    model: LandmarkModel,
    config: ExperimentConfig,
    onnx_path: Path,
    out_dir: Path,
    onnx_nme: float,
    nme_of: Callable[[CropPredictor], float],
) -> GpuChecks:
    """Engines per `config.export.engine_tolerance` (kept ones in `out_dir`), then latencies of PyTorch eager on
    CUDA, onnxruntime CUDA and each kept engine. Needs a CUDA device; `model` ends up on it."""
    engines = check_engines(onnx_path, out_dir, config.export.engine_tolerance, onnx_nme, nme_of)
    predictors: dict[str, CropPredictor] = {"torch_eager": torch_predictor(model.to("cuda"), "cuda")}
    not_timed = {}
    ort_cuda, reason = onnxruntime_cuda(onnx_path)
    if ort_cuda is None:
        not_timed["onnxruntime_cuda"] = reason
    else:
        predictors["onnxruntime_cuda"] = ort_cuda
    for check in engines:
        if check.kept:
            predictors[f"tensorrt_{check.precision}"] = EngineRunner(Path(check.engine)).predict
        else:
            not_timed[f"tensorrt_{check.precision}"] = str(check)
    latency = latency_table(predictors, model.input_size, config.export.latency_batches)
    return GpuChecks(engines, latency, not_timed)
