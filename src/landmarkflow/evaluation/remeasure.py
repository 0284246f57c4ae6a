"""A deployed model's NME on a test split it was not evaluated on: how the gate compares with a champion
trained on other data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.manifest import read_split
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.evaluation.predictions import predict_records
from landmarkflow.inference import Predictor
from landmarkflow.layouts import get_layout


def deployed_model_nme(model_ref: str, manifest: str | Path, root: str | Path, config: ExperimentConfig) -> float:
    """Mean NME of the ONNX model at `model_ref` on `config`'s test split, cropped by the model's own metadata."""
    predictor = Predictor.load(model_ref)
    info = predictor.info
    records = read_split(manifest, config.data.test_split)
    preds = predict_records(
        predictor.predict_crops, records, Path(root), info.input_size, info.box_scale, config.eval.batch_size
    )
    gts, boxes = np.stack([r.landmarks for r in records]), np.stack([r.bbox for r in records])
    return float(per_image_nme(preds, gts, get_layout(config.data.layout), boxes, config.data.normaliser).mean())
