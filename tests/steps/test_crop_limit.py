"""Every path that crops a face for a model cuts it with the model's crop shrink limit (`data.max_crop_shrink`, then
the ONNX metadata, in its `CropSpec`): evaluate (the test split, perturbed boxes, the upright pass, real faces), the
shape calibration, export's parity gate, `predict` and the champion's re-measure. One that forgot it would read a
big photo's face more coarsely than the model was trained to, and only on photos, where nothing else would show it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest

from landmarkflow import inference, steps, upright
from landmarkflow.config import load_config
from landmarkflow.data.dataset import FaceDataset
from landmarkflow.data.manifest import read_manifest, to_records
from landmarkflow.evaluation import predictions
from landmarkflow.evaluation.real_faces import RealFaces
from landmarkflow.evaluation.remeasure import deployed_model_nme
from landmarkflow.geometry import CropSpec
from landmarkflow.imageio import read_rgb
from landmarkflow.layouts import get_layout
from landmarkflow.models.zoo import build_model
from landmarkflow.runtime import DeployInfo
from landmarkflow.train.calibrate import calibrate_shapes
from landmarkflow.train.checkpoint import load_model
from landmarkflow.train.trainer import Trainer
from landmarkflow.upright import UprightPass
from tests.fakes import DOTS_HIH, ONE_CPU, dot_face_record, untrained, write_random_300w
from tests.test_inference import BOX_SCALE, CENTRE, SIZE, constant_model

LIMIT = 1.0  # below the random faces' crops (about 1.04): every crop is area-reduced first
MODEL = {**DOTS_HIH, "num_points": 68}
DATA = {"max_crop_shrink": LIMIT, "upright_above_deg": 10.0}


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    """The `max_shrink` of every crop cut, by the module that cut it (through `runtime.cut_views` or not)."""
    seen: dict[str, list[float]] = {}
    cut = CropSpec.cut

    def recording(spec: CropSpec, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        frame = sys._getframe(1)
        while frame.f_globals["__name__"] == "landmarkflow.runtime":
            frame = frame.f_back
        seen.setdefault(frame.f_globals["__name__"], []).append(spec.max_shrink)
        return cut(spec, image, matrix)

    monkeypatch.setattr(CropSpec, "cut", recording)
    return seen


def _all_limited(limits: dict[str, list[float]], *modules: ModuleType) -> None:
    """Every crop since the last check kept to the limit, and each of `modules` cut some."""
    assert all(set(cut) == {LIMIT} for cut in limits.values()), limits
    assert all(limits.get(module.__name__) for module in modules), sorted(limits)
    limits.clear()


@pytest.mark.slow
def test_every_step_that_crops_for_the_model_keeps_to_its_shrink_limit(
    tmp_path: Path, limits: dict[str, list[float]]
) -> None:
    trained = untrained(tmp_path, "hih_dots", MODEL, train_faces=20, data=DATA)  # the calibration needs 20 faces
    real = tmp_path / "real"
    write_random_300w(real, {"ibug": 2}, seed=100)

    steps.evaluate(trained, tmp_path / "eval", RealFaces("300w", real))
    _all_limited(limits, predictions)

    _, config = load_model(Path(trained.checkpoint))
    records = to_records(read_manifest(trained.manifest))
    calibrated = build_model({**MODEL, "shape_calibration_modes": 2})  # exported, it would take 4x as long
    assert calibrate_shapes(calibrated, records, Path(trained.root), config) is not None
    _all_limited(limits, predictions)

    exported = steps.export(trained, tmp_path / "export")
    _all_limited(limits, predictions)

    predictor = inference.Predictor.load(exported.onnx_path)
    assert predictor.info.max_crop_shrink == LIMIT
    face = records[0]
    predictor.predict_image(read_rgb(Path(trained.root) / face.image_path), [face.bbox])
    _all_limited(limits, inference)

    deployed_model_nme(exported.onnx_path, trained.manifest, trained.root, config)
    _all_limited(limits, predictions)


def test_the_training_set_knows_the_most_its_crops_shrink(tmp_path: Path) -> None:
    trained = untrained(tmp_path, "hih_dots", MODEL, train_faces=3, data=DATA)
    model, config = load_model(Path(trained.checkpoint))
    records = to_records(read_manifest(trained.manifest))
    data = FaceDataset(records, trained.root, model.codec, config.crop_spec, config.augment)
    sides = [max(r.bbox[2] - r.bbox[0], r.bbox[3] - r.bbox[1]) for r in records]
    assert data.largest_shrink() == pytest.approx(1.25 * config.augment.scale_range[1] * max(sides) / 96)
    assert data.largest_shrink() > LIMIT  # these crops are area-reduced in training too, as the model's will be


def _rolled_eyes() -> np.ndarray:
    """68 points at the centre of a `SIZE`-px crop but the eyes, whose line rolls 20 degrees: read again upright."""
    points = np.full((68, 2), CENTRE, dtype=np.float32)
    along = 10 * np.array([np.cos(np.radians(20.0)), np.sin(np.radians(20.0))])
    points[36:42], points[42:48] = CENTRE - along, CENTRE + along
    return points


def test_the_upright_pass_crops_within_the_limit(tmp_path: Path, limits: dict[str, list[float]]) -> None:
    """A model whose first answers roll is read again on upright crops, which keep to the limit as the first crops
    do: in evaluation (`predict_records`) and in `predict` (the Predictor)."""
    trained = untrained(tmp_path, "hih_dots", MODEL, train_faces=2, data=DATA)
    records = to_records(read_manifest(trained.manifest))
    rolled = _rolled_eyes()

    def answer_rolled(crops: np.ndarray) -> np.ndarray:
        return np.broadcast_to(rolled, (len(crops), 68, 2)).copy()

    second = UprightPass(get_layout("68"), 10.0)
    root = Path(trained.root)
    predictions.predict_records(answer_rolled, records, root, CropSpec(SIZE, BOX_SCALE, LIMIT), upright=second)
    _all_limited(limits, predictions, upright)

    info = DeployInfo("rolled", "68", 68, SIZE, BOX_SCALE, upright_above_deg=10.0, max_crop_shrink=LIMIT)
    path = tmp_path / "rolled.onnx"
    onnx.save(constant_model(rolled, info), path)
    predictor = inference.Predictor.load(path)
    predictor.predict_image(read_rgb(root / records[0].image_path), [records[0].bbox])
    _all_limited(limits, inference, upright)


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
