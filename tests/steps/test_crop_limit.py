"""Every path that crops a face for a model passes its crop shrink limit (`data.max_crop_shrink`, then the ONNX
metadata) to `warp_image`: evaluate (the test split, perturbed boxes, the upright pass, real faces), the shape
calibration, export's parity gate, `predict` and the champion's re-measure. One that forgot it would read a big photo's
face more coarsely than the model was trained to, and only on photos, where nothing else would show it."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from landmarkflow import inference, steps, upright
from landmarkflow.config import load_config
from landmarkflow.data.dataset import FaceDataset
from landmarkflow.data.manifest import read_manifest, to_records
from landmarkflow.evaluation import predictions
from landmarkflow.evaluation.real_faces import RealFaces
from landmarkflow.evaluation.remeasure import deployed_model_nme
from landmarkflow.geometry import warp_image
from landmarkflow.imageio import read_rgb
from landmarkflow.models.zoo import build_model
from landmarkflow.train.calibrate import calibrate_shapes
from landmarkflow.train.checkpoint import load_model
from landmarkflow.train.trainer import Trainer
from tests.fakes import DOTS_HIH, ONE_CPU, dot_face_record, untrained, write_random_300w

LIMIT = 1.0  # below the random faces' crops (about 1.04): every crop is area-reduced first
MODEL = {**DOTS_HIH, "num_points": 68}
DATA = {"max_crop_shrink": LIMIT, "upright_above_deg": 1.0}  # nearly every random first answer is read again upright


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The `max_shrink` of every crop cut through the modules that crop for a model."""
    seen: list[float] = []

    def recording(image: np.ndarray, matrix: np.ndarray, size: int, max_shrink: float = math.inf) -> np.ndarray:
        seen.append(max_shrink)
        return warp_image(image, matrix, size, max_shrink)

    for module in (predictions, upright, inference):
        monkeypatch.setattr(module, "warp_image", recording)
    return seen


def _all_limited(limits: list[float]) -> None:
    assert limits and set(limits) == {LIMIT}, limits
    limits.clear()


def test_every_step_that_crops_for_the_model_keeps_to_its_shrink_limit(tmp_path: Path, limits: list[float]) -> None:
    trained = untrained(tmp_path, "hih_dots", MODEL, train_faces=20, data=DATA)  # the calibration needs 20 faces
    real = tmp_path / "real"
    write_random_300w(real, {"ibug": 2}, seed=100)

    steps.evaluate(trained, tmp_path / "eval", RealFaces("300w", real))
    _all_limited(limits)

    _, config = load_model(Path(trained.checkpoint))
    records = to_records(read_manifest(trained.manifest))
    calibrated = build_model({**MODEL, "shape_calibration_modes": 2})  # exported, it would take 4x as long
    assert calibrate_shapes(calibrated, records, Path(trained.root), config) is not None
    _all_limited(limits)

    exported = steps.export(trained, tmp_path / "export")
    _all_limited(limits)

    predictor = inference.Predictor.load(exported.onnx_path)
    assert predictor.info.max_crop_shrink == LIMIT
    face = records[0]
    predictor.predict_image(read_rgb(Path(trained.root) / face.image_path), [face.bbox])
    _all_limited(limits)

    deployed_model_nme(exported.onnx_path, trained.manifest, trained.root, config)
    _all_limited(limits)


def test_the_training_set_knows_the_most_its_crops_shrink(tmp_path: Path) -> None:
    trained = untrained(tmp_path, "hih_dots", MODEL, train_faces=3, data=DATA)
    model, config = load_model(Path(trained.checkpoint))
    records = to_records(read_manifest(trained.manifest))
    data = FaceDataset(records, trained.root, model.codec, 96, 1.25, config.augment, max_shrink=LIMIT)
    sides = [max(r.bbox[2] - r.bbox[0], r.bbox[3] - r.bbox[1]) for r in records]
    assert data.largest_shrink() == pytest.approx(1.25 * config.augment.scale_range[1] * max(sides) / 96)
    assert data.largest_shrink() > LIMIT  # these crops are area-reduced in training too, as the model's will be


@pytest.mark.parametrize("limit,warns", [(None, False), (1.0, True)])
def test_training_warns_when_the_limit_would_average_its_own_crops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, limit: float | None, warns: bool
) -> None:
    """The default configs' limit keeps every training crop a plain bilinear one; a limit below the most the crops
    shrink averages some of them too, which is said before training starts."""
    config = load_config("configs/lgcn_synthetic_tiny.yaml", {"data.max_crop_shrink": limit, "model.filters": 8})
    records = [dot_face_record(tmp_path, index) for index in range(3)]
    with caplog.at_level(logging.WARNING, logger="landmarkflow.train.trainer"):
        Trainer(config, build_model(config.model), records, [], tmp_path, tmp_path / "out", ONE_CPU)
    assert ("is below the most this training set's crops shrink" in caplog.text) == warns
