"""The export step: ONNX of `predict` with deploy metadata, onnxruntime parity on the test split, TensorRT on a GPU."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.manifest import read_split
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records, predict_records_each, torch_predictor
from landmarkflow.export.gpu_checks import GpuChecks, run_gpu_checks
from landmarkflow.export.onnx import export_onnx
from landmarkflow.export.tensorrt import tensorrt_available
from landmarkflow.fileio import atomic_path
from landmarkflow.layouts import get_layout
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.outages import tracking_step
from landmarkflow.runtime import (
    ENGINE_PRECISIONS,
    ONNX_FILE,
    SHAPE_MODEL_FILE,
    DeployInfo,
    engine_file,
    open_session,
    run_onnx,
)
from landmarkflow.steps.results import ExportResult, TrainResult, require_same_manifest
from landmarkflow.tracking import log_metrics
from landmarkflow.train.checkpoint import load_model

log = logging.getLogger(__name__)
ENGINE_ARTIFACTS = "tensorrt"
"""The run's artifact folder for the TensorRT engines export kept."""


HEATMAP_OUTPUT = "heatmaps"
"""The ONNX output of the heatmaps a model's shape fit needs (only models with a shape model have it)."""


def deploy_info(config: ExperimentConfig, heatmaps: bool = False) -> DeployInfo:
    """The crop convention a deployed model needs, from its config; `heatmaps`: the graph outputs them too."""
    return DeployInfo(
        model=config.model.name,
        layout=config.data.layout,
        num_points=config.model.num_points,
        input_size=config.model.input_size,
        box_scale=config.data.box_scale,
        config_hash=config.config_hash(),
        upright_above_deg=math.inf if config.data.upright_above_deg is None else config.data.upright_above_deg,
        max_crop_shrink=config.crop_spec.max_shrink,
        heatmap_name=HEATMAP_OUTPUT if heatmaps else "",
        crop_views=config.crop_spec.views,
    )


def onnx_predictor(onnx_path: Path) -> CropPredictor:
    """A numpy crops -> crop points function backed by onnxruntime."""
    session = open_session(onnx_path)
    return lambda crops: run_onnx(session, crops)


@tracking_step
def export(trained: TrainResult, out_dir: str | Path) -> ExportResult:
    """ONNX of `predict` with its deploy metadata and its parity on the test split; on a GPU, TensorRT engines
    compared with onnxruntime there (each kept only within its precision's tolerance) and every runtime's latency.
    A model with a shape-fitting post-step (LGCN) gets its shape model of the train split beside the ONNX, the one
    evaluate measured `nme_shape_fitted` with, and the ONNX outputs the heatmaps it is fitted to."""
    require_same_manifest(trained)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_earlier_export(out_dir)
    model, config = load_model(Path(trained.checkpoint))
    train = read_split(trained.manifest, "train")
    shapes = None
    if train:  # as evaluate builds it
        train_points, train_boxes = np.stack([r.landmarks for r in train]), np.stack([r.bbox for r in train])
        shapes = model.shape_model(train_points, train_boxes, config.data.box_scale)
    info = deploy_info(config, heatmaps=shapes is not None)
    onnx_path = export_onnx(model, out_dir / ONNX_FILE, info, opset=config.export.opset)
    if shapes is not None:
        with atomic_path(out_dir / SHAPE_MODEL_FILE) as tmp:
            shapes.save(tmp)
    records = read_split(trained.manifest, config.data.test_split)[: config.export.parity_max_images]
    root, layout = Path(trained.root), get_layout(config.data.layout)
    crops = (root, config.crop_spec, config.eval.batch_size)
    # One pass on purpose: parity compares the two graphs on the same crops, and second crops would follow each
    # graph's own first answer (a face near the upright threshold could be cropped twice by one and once by the other).
    torch_preds, onnx_preds = predict_records_each([torch_predictor(model), onnx_predictor(onnx_path)], records, *crops)
    torch_nme = mean_nme(torch_preds, records, layout, config.data.normaliser)
    onnx_nme = mean_nme(onnx_preds, records, layout, config.data.normaliser)
    max_diff = float(np.abs(torch_preds - onnx_preds).max())
    client = MlflowClient()
    client.log_metric(trained.run_id, "onnx_parity_delta_nme", abs(onnx_nme - torch_nme))
    client.log_metric(trained.run_id, "onnx_max_abs_diff_px", max_diff)
    available, reason = tensorrt_available()
    if not available:
        tensorrt, engines, latency = f"skipped: {reason}", [], {}
    else:

        def nme_of(predict: CropPredictor) -> float:
            preds = predict_records(predict, records, *crops)
            return mean_nme(preds, records, layout, config.data.normaliser)

        checks = run_gpu_checks(model, config, onnx_path, out_dir, onnx_nme, nme_of)
        log_gpu_checks(client, trained.run_id, checks)
        tensorrt = "; ".join(str(check) for check in checks.engines) or "no engine precision configured"
        engines, latency = [asdict(check) for check in checks.engines], checks.latency_ms
    log.info("TensorRT %s", tensorrt)
    client.set_tag(trained.run_id, "tensorrt", tensorrt)
    return ExportResult(
        trained.run_id,
        str(onnx_path),
        torch_nme,
        onnx_nme,
        onnx_nme - torch_nme,
        max_diff,
        len(records),
        tensorrt,
        engines,
        latency,
    )


def _remove_earlier_export(out_dir: Path) -> None:
    """Delete the shape model and engines an earlier export left in a reused folder: register logs a shape model
    beside the ONNX with it, and predict runs an engine beside it, as this model's (an LGCN's shape model made every
    other model's bundle unloadable; a GPU export's engine kept answering for a model exported after it)."""
    for name in (SHAPE_MODEL_FILE, *(engine_file(precision) for precision in ENGINE_PRECISIONS)):
        (out_dir / name).unlink(missing_ok=True)


def log_gpu_checks(client: MlflowClient, run_id: str, checks: GpuChecks) -> None:
    """Kept engines as artifacts under `tensorrt/`, tagged with what they are tied to; every ΔNME and latency."""
    metrics = {f"latency_{name}": value for name, value in checks.latency_ms.items()}
    for check in checks.engines:
        client.set_tag(run_id, f"tensorrt_{check.precision}", str(check))
        if check.delta_nme is not None:
            metrics[f"tensorrt_{check.precision}_delta_nme"] = abs(check.delta_nme)
        if check.kept:
            client.log_artifact(run_id, check.engine, ENGINE_ARTIFACTS)
            client.set_tag(run_id, "tensorrt_version", check.tensorrt_version)
            client.set_tag(run_id, "tensorrt_gpu", check.device_name)
            client.set_tag(run_id, "tensorrt_compute_capability", check.compute_capability)
    for name, why in checks.not_timed.items():
        client.set_tag(run_id, f"latency_{name}", f"not timed: {why}")
    log_metrics(client, run_id, metrics)
