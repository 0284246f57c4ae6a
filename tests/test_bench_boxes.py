"""bench/bench_boxes.py's measure, with constant ONNX models whose answers on a crop are known."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from bench.bench_boxes import box_reads
from landmarkflow.config import EvalConfig
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.evaluation.perturb import perturb_boxes
from landmarkflow.geometry import crop_matrix, invert_affine, landmark_box, transform_points
from landmarkflow.inference import Predictor
from landmarkflow.layouts import get_layout
from landmarkflow.runtime import DeployInfo
from tests.test_inference import BOX_SCALE, SIZE, constant_model

BOXES = ([80.0, 90.0, 180.0, 190.0], [100.0, 60.0, 220.0, 180.0], [50.0, 50.0, 130.0, 130.0])


def _pattern(points: int) -> np.ndarray:
    """The constant model's answer in the crop: points spread over its middle half."""
    return np.random.default_rng(points).uniform(SIZE / 4, 3 * SIZE / 4, size=(points, 2)).astype(np.float32)


def _predictor(tmp_path: Path, points: int) -> Predictor:
    info = DeployInfo(model="constant", layout=str(points), num_points=points, input_size=SIZE, box_scale=BOX_SCALE)
    path = tmp_path / f"model{points}.onnx"
    onnx.save(constant_model(_pattern(points), info), path)
    return Predictor.load(path)


def _faces(tmp_path: Path, points: int) -> list[FaceRecord]:
    """Faces whose true landmarks are the constant model's answer on their own boxes: read from them, NME 0."""
    cv2.imwrite(str(tmp_path / "face.png"), np.zeros((300, 300, 3), np.uint8))
    faces = []
    for k, box in enumerate(np.asarray(BOXES)):
        truth = transform_points(_pattern(points), invert_affine(crop_matrix(box, SIZE, BOX_SCALE)))
        face = FaceRecord(f"f{k}", "synthetic", "test", "face.png", 300, 300, box, truth, np.ones(points), str(points))
        faces.append(face)
    return faces


def _answers(points: int, boxes: np.ndarray) -> np.ndarray:
    """The constant model's image points read from each of `boxes`."""
    return np.stack([transform_points(_pattern(points), invert_affine(crop_matrix(b, SIZE, BOX_SCALE))) for b in boxes])


@pytest.mark.parametrize("points", [68, 19])
def test_given_boxes_score_zero_and_only_the_landmark_box_layout_reads_again(tmp_path: Path, points: int) -> None:
    """From the dataset's boxes the answer is the truth; from evaluate's perturbed boxes it is the pattern read from
    those boxes, and a 68-point model's second read is the pattern read from the first answer's landmark box."""
    faces = _faces(tmp_path, points)
    reads = box_reads(_predictor(tmp_path, points), faces, tmp_path)
    boxes, truths = np.asarray(BOXES), np.stack([face.landmarks for face in faces])
    defaults = EvalConfig()
    moved = perturb_boxes(boxes, defaults.perturb_shift, defaults.perturb_scale, defaults.perturb_seed)
    once = _answers(points, moved)
    again = _answers(points, np.stack([landmark_box(answer) for answer in once])) if points == 68 else once
    layout = get_layout(str(points))
    assert reads["given"] == pytest.approx(0.0, abs=1e-6)
    assert reads["perturbed_once"] == pytest.approx(per_image_nme(once, truths, layout, boxes).mean(), rel=1e-4)
    assert reads["perturbed_read_again"] == pytest.approx(per_image_nme(again, truths, layout, boxes).mean(), rel=1e-4)
    assert reads["perturbed_once"] > 0.05
