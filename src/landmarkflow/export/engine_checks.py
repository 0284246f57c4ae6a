"""TensorRT engines compared with onnxruntime on the test split, each precision against its own tolerance.

An engine is kept (moved beside the ONNX, where predict finds it) only if its NME on the test split is within the
config's tolerance for its precision of onnxruntime's NME on the same crops; a rejected engine is deleted, so a
deployment can never pick up an engine that was not shown to agree with the model that passed the gates.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from landmarkflow.config import EnginePrecision
from landmarkflow.export.tensorrt import TensorRTResult, build_tensorrt_engine, precision_unavailable
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.runtime import engine_file

KEPT, REJECTED, SKIPPED = "kept", "rejected", "skipped"

Builder = Callable[[Path, Path, EnginePrecision], TensorRTResult | None]
"""(onnx, engine path, precision) -> the built engine, or None where it cannot be built here."""
Runner = Callable[[Path], CropPredictor]
"""An engine file -> a crops -> crop points function that runs it."""


@dataclass(frozen=True)
class EngineCheck:
    """One precision's outcome: kept, rejected (|ΔNME| over its tolerance) or skipped (with the reason)."""

    precision: str
    status: str
    tolerance: float
    delta_nme: float | None = None
    engine: str = ""
    reason: str = ""
    tensorrt_version: str = ""
    device_name: str = ""
    compute_capability: str = ""

    @property
    def kept(self) -> bool:
        return self.status == KEPT

    def __str__(self) -> str:
        if self.delta_nme is None:
            return f"{self.precision} {self.status}: {self.reason}"
        return (
            f"{self.precision} {self.status}: |dNME| {abs(self.delta_nme):.2e} vs tolerance {self.tolerance:.2e}"
            f" (TensorRT {self.tensorrt_version} on {self.device_name})"
        )


def within_tolerance(engine_nme: float, onnx_nme: float, tolerance: float) -> tuple[bool, float]:
    """(kept, engine NME - onnxruntime NME); a NaN NME is never within any tolerance."""
    delta = engine_nme - onnx_nme
    return bool(abs(delta) <= tolerance), delta


def check_engines(
    onnx_path: Path,
    out_dir: Path,
    tolerances: Mapping[EnginePrecision, float],
    onnx_nme: float,
    nme_of: Callable[[CropPredictor], float],
    build: Builder = build_tensorrt_engine,
    runner: Runner | None = None,
) -> list[EngineCheck]:
    """Build an engine per precision in `tolerances`, score it with `nme_of` (test-split NME of a predictor, the
    one that gave `onnx_nme`), keep it in `out_dir` under `runtime.engine_file` or delete it."""
    if runner is None:
        from landmarkflow.export.engine_runner import EngineRunner

        def runner(path: Path) -> CropPredictor:
            return EngineRunner(path).predict

    checks = []
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".engines-") as tmp:
        for precision, tolerance in tolerances.items():
            candidate = Path(tmp) / engine_file(precision)
            built = build(onnx_path, candidate, precision)
            if built is None:
                reason = precision_unavailable(precision) or "cannot be built here (see the log)"
                checks.append(EngineCheck(precision, SKIPPED, tolerance, reason=reason))
                continue
            kept, delta = within_tolerance(nme_of(runner(candidate)), onnx_nme, tolerance)
            final = out_dir / engine_file(precision)
            if kept:
                os.replace(candidate, final)
            else:
                final.unlink(missing_ok=True)  # an engine of an earlier export in this folder is not this model's
            checks.append(
                EngineCheck(
                    precision,
                    KEPT if kept else REJECTED,
                    tolerance,
                    delta,
                    str(final) if kept else "",
                    tensorrt_version=built.tensorrt_version,
                    device_name=built.device_name,
                    compute_capability=built.compute_capability,
                )
            )
    return checks
