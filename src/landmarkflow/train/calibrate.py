"""After training: fit a model's shape calibration (models/shape_calibration.py) on its own answers for the train
faces, one pass on each face's box as `predict` sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records, torch_predictor
from landmarkflow.layouts import get_layout
from landmarkflow.models.base import LandmarkModel


@dataclass(frozen=True)
class CalibrationFit:
    """How a fit went on the faces it was fitted to: mean NME of the answers before and after the correction."""

    faces: int
    nme_before: float
    nme_after: float


def calibrate_shapes(
    model: LandmarkModel,
    records: Sequence[FaceRecord],
    root: Path,
    config: ExperimentConfig,
    device: torch.device | str = "cpu",
    shape_records: Sequence[FaceRecord] | None = None,
) -> CalibrationFit | None:
    """Fit `model.shape_calibration` in place (afresh, on the uncorrected answers) on an even spread of at most its
    `max_faces` of the train `records`; None for a model without one. A model that answers through a post-step (LGCN's
    shape fit) is fitted on that post-step's answers, which its calibration corrects: the post-step built from
    `shape_records` (default `records`), the faces export builds the deployed one from (the whole train split)."""
    calibration = model.shape_calibration
    if calibration is None:
        return None
    calibration.reset()
    shaped = records if shape_records is None else shape_records
    refined = model.refined_predictor(
        np.stack([record.landmarks for record in shaped]),
        np.stack([record.bbox for record in shaped]),
        config.data.box_scale,
    )
    predict = torch_predictor(model, device) if refined is None else refined[1]
    spread = np.linspace(0, len(records) - 1, min(len(records), calibration.max_faces)).round().astype(int)
    fit_on = [records[index] for index in spread]
    answers = predict_records(predict, fit_on, root, config.crop_spec, config.eval.batch_size)
    calibration.fit(answers, np.stack([record.landmarks for record in fit_on]))
    with torch.inference_mode():
        corrected = calibration(torch.from_numpy(answers).float().to(device)).cpu().double().numpy()
    layout = get_layout(config.data.layout)
    return CalibrationFit(
        len(fit_on),
        mean_nme(answers, fit_on, layout, config.data.normaliser),
        mean_nme(corrected, fit_on, layout, config.data.normaliser),
    )
