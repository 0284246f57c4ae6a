"""A deployed model's NME on a test split it was not evaluated on: how the gate compares with a champion
trained on other data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.manifest import read_split
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records
from landmarkflow.inference import Predictor
from landmarkflow.layouts import get_layout
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.outages import unreachable_service
from landmarkflow.runtime import ORT_MODEL_RUN_ERRORS


class UnusableModel(ValueError):
    """The deployed model cannot be measured at all: its files are gone or unreadable, it answers another layout,
    its graph rejects the crops its own metadata asks for, or it answers non-finite points. Not an outage, which a
    retry may get past."""


def deployed_model_nme(model_ref: str, manifest: str | Path, root: str | Path, config: ExperimentConfig) -> float:
    """Mean NME of the ONNX model at `model_ref` on `config`'s test split, cropped by the model's own metadata; the
    graph's own landmarks without a shape fit, as evaluate's `nme` that the gate compares it with."""
    predictor = load_deployed(model_ref, config.data.layout)
    records = read_split(manifest, config.data.test_split)
    preds = predict_records(
        _graph_points(predictor),
        records,
        Path(root),
        predictor.info.crop_spec,
        config.eval.batch_size,
        upright=predictor.upright,
    )
    nme = mean_nme(preds, records, get_layout(config.data.layout), config.data.normaliser)
    if not math.isfinite(nme):
        raise UnusableModel(f"{model_ref}: answers non-finite landmarks on this test split")
    return nme


def load_deployed(model_ref: str, layout: str) -> Predictor:
    """The model at `model_ref`, checked to answer `layout`; UnusableModel when it cannot be, while a tracking server
    that stays unreachable is raised as it is (the step fails and can be retried)."""
    try:
        predictor = Predictor.load(model_ref)
    except (ValueError, OSError) as exc:
        if unreachable_service(exc) is not None:
            raise
        raise UnusableModel(str(exc)) from exc
    if predictor.info.layout != layout:
        raise UnusableModel(
            f"{model_ref}: built for layout {predictor.info.layout} ({predictor.info.num_points} points), "
            f"expected layout {layout}"
        )
    return predictor


def _graph_points(predictor: Predictor) -> CropPredictor:
    """The predictor's graph landmarks for a batch of crops, its own failure to answer them (inputs its graph rejects
    although its metadata asks for them, an operator without a kernel, answers of the wrong shape) raised as
    UnusableModel. Only the model call is wrapped: the test images are read and cropped before it, so a missing or
    unreadable one still fails the step, as does a failure the machine may have caused (memory, CUDA)."""

    def predict(crops: np.ndarray) -> np.ndarray:
        try:
            return predictor.predict_crops(crops, fit_shape=False)
        except (ValueError, *ORT_MODEL_RUN_ERRORS) as exc:
            why = " ".join(str(exc).split())  # onnxruntime's messages span lines
            raise UnusableModel(f"{predictor.source}: fails to predict the test crops: {why}") from exc

    return predict
