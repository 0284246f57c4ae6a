"""The upright second pass on the evaluation path: which faces get a second crop, and where their answers land."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.predictions import predict_records, predict_records_each
from landmarkflow.geometry import CropSpec
from landmarkflow.layouts import get_layout
from landmarkflow.upright import UprightPass

SIZE, BOX_SCALE = 64, 1.25
CROP = CropSpec(SIZE, BOX_SCALE, math.inf)
LAYOUT = get_layout("68")


def answers_rolled(degrees: float) -> np.ndarray:
    """68 crop points whose eye line rolls by `degrees`: the eyes on a line through the crop centre, the rest on it."""
    turn = np.radians(degrees)
    along = np.linspace(-20, 20, 68)
    along[36:42], along[42:48] = -10, 10
    return (SIZE - 1) / 2 + along[:, None] * np.array([np.cos(turn), np.sin(turn)])


class Constant:
    """A crop predictor that answers `answers_rolled(degrees)` for every crop, and counts the crops it saw."""

    def __init__(self, degrees: float) -> None:
        self.answer = answers_rolled(degrees)
        self.crops = 0

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        self.crops += len(crops)
        return np.broadcast_to(self.answer, (len(crops), 68, 2)).copy()


@pytest.fixture
def faces(tmp_path: Path) -> list[FaceRecord]:
    cv2.imwrite(str(tmp_path / "photo.png"), np.zeros((200, 300, 3), np.uint8))
    boxes = [(20.0, 30.0, 120.0, 130.0), (150.0, 40.0, 230.0, 120.0), (100.0, 100.0, 160.0, 190.0)]
    return [
        FaceRecord(f"f{i}", "300w", "test", "photo.png", 300, 200, box, np.full((68, 2), 50.0), np.ones(68, bool), "68")
        for i, box in enumerate(boxes)
    ]


def test_only_faces_rolled_past_the_threshold_get_a_second_crop(faces: list[FaceRecord], tmp_path: Path) -> None:
    upright = UprightPass.maybe("68", 10.0)
    predict = Constant(20.0)
    points = predict_records(predict, faces, tmp_path, CROP, 2, upright=upright)
    assert predict.crops == 2 * len(faces)
    np.testing.assert_allclose(LAYOUT.eye_line_deg(points), 40.0, atol=1e-6)
    level = Constant(5.0)
    points = predict_records(level, faces, tmp_path, CROP, 2, upright=upright)
    assert level.crops == len(faces)
    np.testing.assert_allclose(LAYOUT.eye_line_deg(points), 5.0, atol=1e-6)


def test_each_predictor_gets_its_own_second_crops(faces: list[FaceRecord], tmp_path: Path) -> None:
    """The parity case: two predictors share the first crops; the second crops follow each one's answer."""
    rolled, level = Constant(-25.0), Constant(0.0)
    first, second = predict_records_each(
        [rolled, level], faces, tmp_path, CROP, 8, upright=UprightPass.maybe("68", 10.0)
    )
    assert (rolled.crops, level.crops) == (2 * len(faces), len(faces))
    np.testing.assert_allclose(LAYOUT.eye_line_deg(first), -50.0, atol=1e-6)
    np.testing.assert_allclose(LAYOUT.eye_line_deg(second), 0.0, atol=1e-6)
    without = predict_records(Constant(-25.0), faces, tmp_path, CROP, 8)
    np.testing.assert_allclose(LAYOUT.eye_line_deg(without), -25.0, atol=1e-6)


@pytest.mark.parametrize("threshold", [None, float("inf")])
def test_no_threshold_means_one_pass(threshold: float | None) -> None:
    assert UprightPass.maybe("68", threshold) is None
