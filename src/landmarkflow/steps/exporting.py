"""The export step: ONNX of `predict` with deploy metadata, onnxruntime parity on the test split, TensorRT on a GPU."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.manifest import read_split
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records_each, torch_predictor
from landmarkflow.export.onnx import export_onnx
from landmarkflow.export.tensorrt import build_tensorrt_engine, tensorrt_available
from landmarkflow.layouts import get_layout
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.outages import tracking_step
from landmarkflow.runtime import ONNX_FILE, TENSORRT_ENGINE_FILE, DeployInfo, open_session, run_onnx
from landmarkflow.steps.results import ExportResult, TrainResult
from landmarkflow.train.checkpoint import load_model

log = logging.getLogger(__name__)


def deploy_info(config: ExperimentConfig) -> DeployInfo:
    """The crop convention a deployed model needs, from its config."""
    return DeployInfo(
        model=config.model.name,
        layout=config.data.layout,
        num_points=config.model.num_points,
        input_size=config.model.input_size,
        box_scale=config.data.box_scale,
        config_hash=config.config_hash(),
    )


def onnx_predictor(onnx_path: Path) -> CropPredictor:
    """A numpy crops -> crop points function backed by onnxruntime."""
    session = open_session(onnx_path)
    return lambda crops: run_onnx(session, crops)


@tracking_step
def export(trained: TrainResult, out_dir: str | Path) -> ExportResult:
    """ONNX of `predict` with its deploy metadata, parity on the test split, TensorRT when a GPU is here."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, config = load_model(Path(trained.checkpoint))
    onnx_path = export_onnx(model, out_dir / ONNX_FILE, deploy_info(config), opset=config.export.opset)
    records = read_split(trained.manifest, config.data.test_split)[: config.export.parity_max_images]
    root, layout = Path(trained.root), get_layout(config.data.layout)
    torch_preds, onnx_preds = predict_records_each(
        [torch_predictor(model), onnx_predictor(onnx_path)],
        records,
        root,
        model.input_size,
        config.data.box_scale,
        config.eval.batch_size,
    )
    torch_nme = mean_nme(torch_preds, records, layout, config.data.normaliser)
    onnx_nme = mean_nme(onnx_preds, records, layout, config.data.normaliser)
    max_diff = float(np.abs(torch_preds - onnx_preds).max())
    available, reason = tensorrt_available()
    if available:
        engine = build_tensorrt_engine(onnx_path, out_dir / TENSORRT_ENGINE_FILE, fp16=False)
        tensorrt = f"built {engine}"
    else:
        tensorrt = f"skipped: {reason}"
    log.info("TensorRT %s", tensorrt)
    client = MlflowClient()
    client.log_metric(trained.run_id, "onnx_parity_delta_nme", abs(onnx_nme - torch_nme))
    client.log_metric(trained.run_id, "onnx_max_abs_diff_px", max_diff)
    client.set_tag(trained.run_id, "tensorrt", tensorrt)
    return ExportResult(
        trained.run_id, str(onnx_path), torch_nme, onnx_nme, onnx_nme - torch_nme, max_diff, len(records), tensorrt
    )
