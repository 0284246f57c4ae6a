"""Crop views (`data.crop_views`, `CropSpec.views`): every face read on crops of several sizes, each answer mapped
back by its own crop and the answers averaged in the photo, the same on the evaluation path and in `predict`."""

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from landmarkflow.config import ConfigError, load_config
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.predictions import predict_records
from landmarkflow.geometry import CropSpec
from landmarkflow.inference import Predictor
from landmarkflow.layouts import get_layout
from landmarkflow.runtime import METADATA_PREFIX, DeployInfo
from landmarkflow.steps.exporting import deploy_info
from landmarkflow.upright import UprightPass
from tests.evaluation.test_upright import Constant
from tests.test_inference import BOX_SCALE, INFO, PATTERN, SIZE, constant_model

VIEWS = (0.8, 1.0, 1.3)
CROP = CropSpec(SIZE, BOX_SCALE, math.inf, VIEWS)
BOXES = [(20.0, 30.0, 120.0, 130.0), (150.0, 40.0, 230.0, 120.0), (100.0, 100.0, 160.0, 190.0)]


def _expected(box: tuple[float, ...], views: tuple[float, ...] = VIEWS) -> np.ndarray:
    """PATTERN's first three points in the photo: each view's crop maps them to the box centre plus their offset
    from the crop centre x that view's side / SIZE, so the mean of the views scales the offsets by the mean view."""
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    side = BOX_SCALE * max(box[2] - box[0], box[3] - box[1]) * float(np.mean(views))
    return centre + np.array([[0.0, 0.0], [side / 2, 0.0], [0.0, -side / 4]])


class Recording:
    """Answers PATTERN for every crop and keeps each call's batch."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        self.calls.append(crops)
        return np.broadcast_to(PATTERN, (len(crops), *PATTERN.shape)).copy()


@pytest.fixture
def photo(tmp_path: Path) -> np.ndarray:
    """A 300 x 200 photo of noise, so that crops of different sizes differ."""
    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.png"), image[..., ::-1])
    return image


def _records(layout: str = "19") -> list[FaceRecord]:
    points = get_layout(layout).num_points
    return [
        FaceRecord(
            f"f{i}", "aflw", "test", "photo.png", 300, 200, box, np.zeros((points, 2)), np.ones(points, bool), layout
        )
        for i, box in enumerate(BOXES)
    ]


def test_each_face_is_read_on_its_views_and_the_answers_averaged_in_the_photo(
    photo: np.ndarray, tmp_path: Path
) -> None:
    predict = Recording()
    points = predict_records(predict, _records(), tmp_path, CROP, batch_size=7)
    # 7 crops a call hold two faces' three views: the faces' views in a row, each view a different crop
    assert [len(call) for call in predict.calls] == [6, 3]
    first = predict.calls[0]
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    for face, box in zip(points, BOXES, strict=True):
        np.testing.assert_allclose(face[:3], _expected(box), atol=1e-9)

    one_view = Recording()
    single = predict_records(one_view, _records(), tmp_path, replace(CROP, views=(1.0,)), batch_size=7)
    np.testing.assert_allclose(single[0, :3], _expected(BOXES[0], (1.0,)), atol=1e-9)
    # the middle view is the one-view crop, pixel for pixel
    np.testing.assert_array_equal(first[1], one_view.calls[0][0])


def test_the_upright_pass_reads_its_second_crops_on_the_views_too(photo: np.ndarray, tmp_path: Path) -> None:
    records = [replace(r, layout="68", landmarks=np.zeros((68, 2)), visible=np.ones(68, bool)) for r in _records()]
    rolled = Constant(20.0)
    points = predict_records(rolled, records, tmp_path, CROP, 6, upright=UprightPass.maybe("68", 10.0))
    assert rolled.crops == 2 * len(VIEWS) * len(records)
    np.testing.assert_allclose(get_layout("68").eye_line_deg(points), 40.0, atol=1e-6)


def test_predict_reads_the_views_its_metadata_names_as_evaluation_does(photo: np.ndarray, tmp_path: Path) -> None:
    info = replace(INFO, crop_views=VIEWS)
    assert info.to_props()[METADATA_PREFIX + "crop_views"] == "0.8,1.0,1.3"
    path = tmp_path / "views.onnx"
    onnx.save(constant_model(info=info), path)
    predictor = Predictor.load(path)
    assert predictor.info.crop_spec == CROP
    assert predictor.crop_faces(photo, np.array(BOXES)).crops.shape == (len(VIEWS) * len(BOXES), 3, SIZE, SIZE)
    faces = predictor.predict_image(photo, np.array(BOXES))
    evaluated = predict_records(predictor.predict_crops, _records(), tmp_path, predictor.info.crop_spec)
    for face, box, points in zip(faces, BOXES, evaluated, strict=True):
        np.testing.assert_array_equal(face.bbox, box)
        np.testing.assert_allclose(face.landmarks[:3], _expected(box), atol=1e-4)
        np.testing.assert_allclose(face.landmarks, points, atol=1e-9)


@pytest.mark.parametrize(
    "text,message",
    [
        ("0.9,wide", "crop_views is '0.9,wide', expected comma-separated numbers"),
        ("0.9,-1", "crop_views: crop views must be distinct positive"),
        ("1,1.0", "crop_views: crop views must be distinct positive"),
    ],
)
def test_bad_views_in_the_metadata_name_the_model_and_the_key(text: str, message: str) -> None:
    props = {**INFO.to_props(), METADATA_PREFIX + "crop_views": text}
    with pytest.raises(ValueError, match=f"^my.onnx: metadata landmarkflow.{message}"):
        DeployInfo.from_props(props, "my.onnx")


def test_a_model_exported_before_the_views_reads_one_crop() -> None:
    props = {key: value for key, value in INFO.to_props().items() if not key.endswith("crop_views")}
    assert DeployInfo.from_props(props).crop_spec.views == (1.0,)


def test_answers_that_do_not_match_the_crops_are_refused() -> None:
    matrices = np.stack([CROP.matrix(np.array(BOXES[0]), scale=v) for v in VIEWS])
    with pytest.raises(ValueError, match="3 crops a face, got 2 answers for 3 crops"):
        CROP.to_image(np.zeros((2, 19, 2)), matrices)
    assert CROP.to_image(np.zeros((0, 19, 2)), []).shape == (0, 19, 2)


def test_the_config_says_which_views_export_writes_and_refuses_sizes_out_of_range() -> None:
    config = load_config("configs/hih_synthetic_tiny.yaml", {"data.crop_views": [0.9, 1.0, 1.1]})
    assert config.crop_spec.views == (0.9, 1.0, 1.1)
    assert deploy_info(config).to_props()[METADATA_PREFIX + "crop_views"] == "0.9,1.0,1.1"
    with pytest.raises(ConfigError, match=r"data\.crop_views: .*distinct"):
        load_config("configs/hih_synthetic_tiny.yaml", {"data.crop_views": [1.0, 1.0]})
    with pytest.raises(ConfigError, match=r"data\.crop_views\.1: Input should be less than or equal to 2"):
        load_config("configs/hih_synthetic_tiny.yaml", {"data.crop_views": [1.0, 2.5]})
    with pytest.raises(ConfigError, match=r"data\.crop_views: .*at least 1 item"):
        load_config("configs/hih_synthetic_tiny.yaml", {"data.crop_views": []})
