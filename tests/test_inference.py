"""Predictor and detector end to end, with a tiny constant ONNX model whose answers are known in the crop."""

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import mlflow
import numpy as np
import onnx
import pytest
from mlflow.tracking import MlflowClient
from onnx import TensorProto, helper, numpy_helper
from skimage import data
from typer.testing import CliRunner

from landmarkflow.cli import app
from landmarkflow.detection import detect_faces
from landmarkflow.evaluation.remeasure import UnusableModel, load_deployed
from landmarkflow.geometry import landmark_box
from landmarkflow.imageio import read_rgb
from landmarkflow.inference import Predictor, load_registered
from landmarkflow.layouts import get_layout
from landmarkflow.models.lgcn_shape import ShapeModel
from landmarkflow.runtime import SHAPE_MODEL_FILE, DeployInfo
from landmarkflow.tracking import ensure_experiment, setup_tracking

SIZE, BOX_SCALE = 64, 1.25
CENTRE = (SIZE - 1) / 2
# Crop-pixel answers: the crop centre, half a crop side to the right, a quarter side up; the rest at the centre.
PATTERN = np.full((19, 2), CENTRE, dtype=np.float32)
PATTERN[1, 0] += SIZE / 2
PATTERN[2, 1] -= SIZE / 4
INFO = DeployInfo(model="constant", layout="19", num_points=19, input_size=SIZE, box_scale=BOX_SCALE)
ASTRONAUT_FACE = np.array([175.0, 70.0, 268.0, 163.0])  # x1 y1 x2 y2 around the face in data.astronaut()


def constant_model(pattern: np.ndarray = PATTERN, info: DeployInfo | None = INFO) -> onnx.ModelProto:
    """images (N,3,S,S) -> landmarks (N,K,2): `pattern` expanded to the batch, whatever the pixels."""
    nodes = [
        helper.make_node("Shape", ["images"], ["batch"], start=0, end=1),
        helper.make_node("Concat", ["batch", "point_dims"], ["out_shape"], axis=0),
        helper.make_node("Expand", ["pattern", "out_shape"], ["landmarks"]),
    ]
    initialisers = [
        numpy_helper.from_array(np.array(pattern.shape, dtype=np.int64), "point_dims"),
        numpy_helper.from_array(pattern[None].astype(np.float32), "pattern"),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_landmarks",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["N", *pattern.shape])],
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    if info is not None:
        helper.set_model_props(model, info.to_props())
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    path = tmp_path / "bundle" / "onnx" / "model.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(constant_model(), path)
    return path


def _expected(box: np.ndarray) -> np.ndarray:
    """PATTERN's first three points in the image, from the crop definition alone (square side 1.25 max(w,h))."""
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = BOX_SCALE * max(box[2] - box[0], box[3] - box[1])
    return np.array([[centre_x, centre_y], [centre_x + side / 2, centre_y], [centre_x, centre_y - side / 4]])


def test_crop_answers_map_back_to_the_box(model_path: Path) -> None:
    predictor = Predictor.load(model_path)
    assert predictor.info == INFO
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    boxes = np.array([[40.0, 30.0, 140.0, 150.0], [200.0, 100.0, 260.0, 130.0], [-20.0, 180.0, 60.0, 300.0]])
    faces = predictor.predict_image(image, boxes)
    assert len(faces) == 3
    for face, box in zip(faces, boxes, strict=True):
        np.testing.assert_array_equal(face.bbox, box)
        assert face.landmarks.shape == (19, 2)
        np.testing.assert_allclose(face.landmarks[:3], _expected(box), atol=1e-4)
        np.testing.assert_allclose(face.landmarks[3:], np.broadcast_to(_expected(box)[0], (16, 2)), atol=1e-4)
    assert predictor.predict_image(image, []) == []
    with pytest.raises(ValueError, match="x2 > x1"):
        predictor.predict_image(image, [[10, 10, 5, 20]])
    with pytest.raises(ValueError, match="HxWx3"):
        predictor.predict_image(image[..., 0], boxes)


def test_a_face_bigger_than_the_model_reads_is_area_averaged_into_its_crop(model_path: Path, tmp_path: Path) -> None:
    """A model whose metadata limits how much a crop shrinks the photo (`max_crop_shrink`) reads a big face from
    pixels that average the photo's, not from pixels sampled 8 apart; its answers land where the crop says."""
    path = tmp_path / "limited.onnx"
    onnx.save(constant_model(info=replace(INFO, max_crop_shrink=2.0)), path)
    limited, plain = Predictor.load(path), Predictor.load(model_path)
    ys, xs = np.mgrid[0:600, 0:800]
    checker = np.repeat(((xs + ys) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)
    boxes = np.array([[200.0, 100.0, 600.0, 500.0]])  # the crop shrinks it 1.25 x 400 / 64 = 7.8 times
    assert plain.crop_faces(checker, boxes).crops.std() > 0.15
    assert limited.crop_faces(checker, boxes).crops.std() < 0.03
    np.testing.assert_allclose(limited.predict_image(checker, boxes)[0].landmarks[:3], _expected(boxes[0]), atol=1e-4)


def _landmark_box_model(tmp_path: Path) -> Path:
    """The constant model in the 68-point layout, whose training boxes are landmark boxes."""
    pattern = np.full((68, 2), CENTRE, dtype=np.float32)
    pattern[:3] = PATTERN[:3]
    info = DeployInfo(model="constant", layout="68", num_points=68, input_size=SIZE, box_scale=BOX_SCALE)
    path = tmp_path / "model68.onnx"
    onnx.save(constant_model(pattern, info), path)
    return path


def test_a_loose_box_is_read_again_from_its_first_answers_box(model_path: Path, tmp_path: Path) -> None:
    """The read from its own box: a 68-point model crops the first answer's landmark box and reads it again, and
    the result says so; a detected face gets it too; a model of another layout (trained on its dataset's boxes)
    reads once."""
    predictor = Predictor.load(_landmark_box_model(tmp_path))
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    box = np.array([40.0, 30.0, 140.0, 150.0])
    (tight,) = predictor.predict_image(image, [box])
    (loose,) = predictor.predict_image(image, [box], loose=True)
    second = landmark_box(_expected(box))
    np.testing.assert_array_equal(tight.bbox, box)
    np.testing.assert_allclose(loose.bbox, second, atol=1e-4)
    np.testing.assert_allclose(loose.landmarks[:3], _expected(second), atol=1e-4)

    astronaut = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(astronaut), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (found,) = detect_faces(read_rgb(astronaut))
    (face,) = predictor.predict_file(astronaut)["faces"]
    np.testing.assert_allclose(face["bbox"], landmark_box(_expected(np.asarray(found.bbox))), atol=0.01)

    (once,) = Predictor.load(model_path).predict_image(image, [box], loose=True)
    np.testing.assert_array_equal(once.bbox, box)


def test_a_first_answer_with_no_extent_keeps_its_box(tmp_path: Path) -> None:
    """Every point in one place has a box of no area: its own-box read crops the first box again, not an error."""
    pattern = np.full((68, 2), CENTRE, dtype=np.float32)
    info = DeployInfo(model="constant", layout="68", num_points=68, input_size=SIZE, box_scale=BOX_SCALE)
    onnx.save(constant_model(pattern, info), tmp_path / "point.onnx")
    box = np.array([40.0, 30.0, 140.0, 150.0])
    (face,) = Predictor.load(tmp_path / "point.onnx").predict_image(
        np.zeros((240, 320, 3), np.uint8), [box], loose=True
    )
    np.testing.assert_array_equal(face.bbox, box)


def test_predict_file_json_for_given_and_detected_boxes(model_path: Path, tmp_path: Path) -> None:
    blank, astronaut = tmp_path / "blank.png", tmp_path / "astronaut.jpg"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 127, dtype=np.uint8))
    cv2.imwrite(str(astronaut), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    predictor = Predictor.load(model_path.parent.parent)  # a bundle folder with the .onnx somewhere inside

    given = [predictor.predict_file(path, bbox=[10, 20, 50, 70]) for path in (blank, astronaut)]
    assert [r["image"] for r in given] == [str(blank), str(astronaut)]
    for result in json.loads(json.dumps(given)):
        (face,) = result["faces"]
        assert face["bbox"] == [10.0, 20.0, 50.0, 70.0]
        assert np.asarray(face["landmarks"]).shape == (19, 2)
        assert face["landmarks"][:2] == [[30.0, 45.0], [30.0 + 1.25 * 50 / 2, 45.0]]

    assert predictor.predict_file(blank)["faces"] == []
    (face,) = predictor.predict_file(astronaut)["faces"]
    x1, y1, x2, y2 = face["bbox"]
    assert x1 < ASTRONAUT_FACE[0] + 20 < x2 and y1 < ASTRONAUT_FACE[1] + 20 < y2
    np.testing.assert_allclose(face["landmarks"][0], [(x1 + x2) / 2, (y1 + y2) / 2], atol=0.01)

    with pytest.raises(FileNotFoundError, match=r"nope\.jpg: no such image file"):
        predictor.predict_file(tmp_path / "nope.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(OSError, match=r"text\.jpg: cannot read image"):
        predictor.predict_file(tmp_path / "text.jpg")


def test_cli_predict_prints_text_or_json_and_draws(model_path: Path, tmp_path: Path) -> None:
    astronaut = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(astronaut), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    args = ["predict", "--model", str(model_path), str(astronaut), "--bbox", "10,20,50,70"]

    text = CliRunner().invoke(app, [*args, "--draw", str(tmp_path / "drawn")])
    assert text.exit_code == 0, text.output
    assert f"{astronaut}: 1 face(s), 19 points each (box 10, 20, 50, 70)" in text.output
    drawn = cv2.imread(str(tmp_path / "drawn" / "astronaut_landmarks.png"))
    assert drawn.shape == (512, 512, 3)
    assert tuple(drawn[45, 30]) == (0, 220, 0)  # the first landmark, the box centre, is painted green

    as_json = CliRunner().invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    (face,) = json.loads(as_json.stdout.strip().splitlines()[-1])["faces"]
    assert face["landmarks"][0] == [30.0, 45.0]

    bad = CliRunner().invoke(app, [*args[:-1], "50,20,10,70"])
    assert bad.exit_code == 1 and "expected x1,y1,x2,y2 with x2 > x1" in bad.output


def test_cli_predict_answers_every_readable_image_and_exits_1_for_the_others(model_path: Path, tmp_path: Path) -> None:
    """An unreadable image among several is an error of its own: the images before and after it are answered."""
    first, last = tmp_path / "first.png", tmp_path / "last.png"
    for path in (first, last):
        cv2.imwrite(str(path), np.full((64, 64, 3), 127, np.uint8))
    (tmp_path / "text.jpg").write_text("not an image")
    images = [first, tmp_path / "text.jpg", tmp_path / "nope.jpg", tmp_path, last]
    result = CliRunner().invoke(
        app, ["predict", "--model", str(model_path), *map(str, images), "--bbox", "10,10,50,50", "--json"]
    )
    assert result.exit_code == 1
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [str(first), str(last)]
    errors = " ".join(result.stderr.split())
    for expected in ("text.jpg: cannot read image", "nope.jpg: no such image file", "a folder, not an image file"):
        assert expected in errors
    assert "3 of 5 images failed (above); the others were answered" in errors
    alone = CliRunner().invoke(app, ["predict", "--model", str(model_path), str(tmp_path / "nope.jpg")])
    assert alone.exit_code == 1 and "1 of 1 images failed (above)" in alone.stderr and "others" not in alone.stderr


def test_cli_predict_draws_two_images_of_one_name_into_two_files(model_path: Path, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "face.png"), np.full((64, 64, 3), 127, np.uint8))
    images = [str(tmp_path / folder / "face.png") for folder in ("a", "b")]
    args = ["predict", "--model", str(model_path), *images, "--bbox", "10,10,50,50", "--draw", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["face_2_landmarks.png", "face_landmarks.png"]


def test_a_given_box_must_be_a_finite_box_on_the_image_and_the_error_names_the_file(
    model_path: Path, tmp_path: Path
) -> None:
    predictor = Predictor.load(model_path)
    image = np.zeros((40, 100, 3), np.uint8)
    with pytest.raises(
        ValueError, match=r"face box \[5000.0, 5000.0, 5100.0, 5100.0\] lies outside the 100 x 40 image"
    ):
        predictor.predict_image(image, [[5000, 5000, 5100, 5100]])
    with pytest.raises(ValueError, match=r"face box \[0.0, 0.0, inf, 10.0\]: expected x1, y1, x2, y2"):
        predictor.predict_image(image, [[0, 0, np.inf, 10]])
    with pytest.raises(ValueError, match=r"list of x1, y1, x2, y2 boxes, got an array of shape \(8,\)"):
        predictor.predict_image(image, [0, 0, 10, 10, 20, 20, 30, 30])
    with pytest.raises(ValueError, match=r"face box \[0.0, 0.0, 1e\+300, 1e\+300\] is more than 4 times the 100 x 40"):
        predictor.predict_image(image, [[0, 0, 1e300, 1e300]])
    (face,) = predictor.predict_image(image, [[-150, -150, 250, 250]])  # 4 times the longer side: a face close up
    assert np.isfinite(face.landmarks).all()
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), image)
    with pytest.raises(ValueError, match=r"small\.png: face box .* lies outside the 100 x 40 image"):
        predictor.predict_file(path, bbox=[5000, 5000, 5100, 5100])


def test_load_errors_name_the_problem(tmp_path: Path, model_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx: no such model"):
        Predictor.load(tmp_path / "missing.onnx")
    foreign = tmp_path / "foreign.onnx"
    onnx.save(constant_model(info=None), foreign)
    with pytest.raises(ValueError, match=r"not a landmarkflow model \(missing metadata .*landmarkflow\.model"):
        Predictor.load(foreign)
    two = tmp_path / "two"
    two.mkdir()
    onnx.save(constant_model(), two / "a.onnx")
    onnx.save(constant_model(), two / "b.onnx")
    with pytest.raises(ValueError, match=r"exactly one \.onnx file inside, found 2 \(a\.onnx, b\.onnx\)"):
        Predictor.load(two)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_text("not a model")
    with pytest.raises(ValueError, match=r"onnxruntime cannot load garbage\.onnx"):
        Predictor.load(garbage)
    checkpoint = tmp_path / "train" / "model.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match=r"model\.pt: a PyTorch checkpoint; .* give <workdir>/export/model\.onnx"):
        Predictor.load(checkpoint)
    wrong_count = tmp_path / "wrong.onnx"
    onnx.save(constant_model(info=DeployInfo("constant", "68", 68, SIZE, BOX_SCALE)), wrong_count)
    with pytest.raises(ValueError, match=r"metadata promises \(1, 68, 2\)"):
        Predictor.load(wrong_count).predict_image(np.zeros((80, 80, 3), np.uint8), [[0, 0, 40, 40]])


@pytest.mark.parametrize("damage", ["truncated", "incomplete"])
def test_an_unreadable_shape_model_is_named_and_leaves_the_model_unusable(tmp_path: Path, damage: str) -> None:
    """An LGCN bundle whose shape_model.npz is cut short or lacks an array: a ValueError naming the bundle (as for a
    broken ONNX), which the gate's re-measure of a champion takes for a model it cannot use, not a failed step."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    info = DeployInfo("lgcn", "19", 19, SIZE, BOX_SCALE, heatmap_name="heatmaps")
    onnx.save(constant_model(info=info), bundle / "model.onnx")
    shapes = ShapeModel(PATTERN.astype(np.float64), np.zeros((38, 1)), np.zeros((0, 3), np.int64), SIZE)
    saved = shapes.save(bundle / SHAPE_MODEL_FILE)
    if damage == "truncated":
        saved.write_bytes(saved.read_bytes()[:100])
    else:
        with np.load(saved) as data:
            arrays = {name: data[name] for name in data.files if name != "constraints"}
        with saved.open("wb") as file:
            np.savez(file, **arrays)
    with pytest.raises(ValueError, match=rf"{bundle}: cannot read {SHAPE_MODEL_FILE}"):
        Predictor.load(bundle)
    with pytest.raises(UnusableModel, match=rf"cannot read {SHAPE_MODEL_FILE}"):
        load_deployed(str(bundle), "19")


def test_load_from_mlflow_registry(tmp_path: Path) -> None:
    # start_run rather than set_experiment: the active experiment is process-wide and would outlive this test
    with mlflow.start_run(experiment_id=mlflow.create_experiment("tiny", (tmp_path / "artifacts").as_uri())):
        mlflow.onnx.log_model(
            constant_model(), name="model", registered_model_name="tiny-test", save_as_external_data=False
        )
    MlflowClient().set_registered_model_alias("tiny-test", "champion", "1")
    for uri in ("models:/tiny-test@champion", "models:/tiny-test/1", "models:/tiny-test/latest"):
        predictor = Predictor.load(uri)
        assert predictor.info == INFO and predictor.source == uri
        (face,) = predictor.predict_image(np.zeros((50, 50, 3), np.uint8), [[0, 0, 20, 20]])
        np.testing.assert_allclose(face.landmarks[0], [10, 10], atol=1e-4)
    with pytest.raises(ValueError, match="models:/tiny-test@staging: cannot download the model"):
        Predictor.load("models:/tiny-test@staging")
    with pytest.raises(ValueError, match=r"models:/tiny-test: cannot download .*; a registered model is models:/<n"):
        Predictor.load("models:/tiny-test")  # MLflow 3 reads it as a logged model's id


def _predict_in(folder: Path, photo: Path) -> subprocess.CompletedProcess:
    """`landmarkflow predict` from a model URI in a fresh process run in `folder`, with no MLFLOW_TRACKING_URI."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "LANDMARKFLOW_ARTIFACTS")}
    command = [sys.executable, "-m", "landmarkflow.cli", "predict", "--model", "models:/tiny-test@champion"]
    return subprocess.run(
        [*command, str(photo), "--bbox", "0,0,20,20", "--json"], cwd=folder, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_predict_from_the_project_folder_uses_its_local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the README shows it after `make pipeline-run`: no environment variable, the project's mlflow/ store."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("LANDMARKFLOW_ARTIFACTS")
    setup_tracking()
    with mlflow.start_run(experiment_id=ensure_experiment("landmarks/tiny")):
        mlflow.onnx.log_model(
            constant_model(), name="model", registered_model_name="tiny-test", save_as_external_data=False
        )
    MlflowClient().set_registered_model_alias("tiny-test", "champion", "1")
    photo = tmp_path / "blank.png"
    cv2.imwrite(str(photo), np.zeros((50, 50, 3), np.uint8))

    found = _predict_in(project, photo)
    assert found.returncode == 0, found.stderr
    np.testing.assert_allclose(json.loads(found.stdout)["faces"][0]["landmarks"][0], [10, 10], atol=0.01)
    missing = _predict_in(elsewhere, photo)
    assert missing.returncode == 1 and not (elsewhere / "mlflow").exists()
    assert "no MLflow store here" in " ".join(missing.stderr.split())


def rolled_eyes(degrees: float) -> np.ndarray:
    """PATTERN with AFLW's eyes (right 6-8, left 9-11) on a line rolled by `degrees` about the crop centre."""
    pattern = PATTERN.copy()
    turn = np.radians(degrees)
    for point, along in zip(range(6, 12), (-12, -10, -8, 8, 10, 12), strict=True):
        pattern[point] = CENTRE + along * np.array([np.cos(turn), np.sin(turn)])
    return pattern


@pytest.mark.parametrize("threshold,expected_roll", [(10.0, 40.0), (30.0, 20.0), (math.inf, 20.0)])
def test_a_rolled_first_answer_is_read_again_on_an_upright_crop(
    tmp_path: Path, threshold: float, expected_roll: float
) -> None:
    """The constant model always answers eyes rolled 20 degrees in its crop: past the model's threshold the second
    crop is turned by those 20 degrees about the box centre, so the answer lands rolled 40 degrees in the image."""
    info = DeployInfo(model="constant", layout="19", num_points=19, input_size=SIZE, box_scale=BOX_SCALE,
                      upright_above_deg=threshold)  # fmt: skip
    path = tmp_path / "model.onnx"
    onnx.save(constant_model(rolled_eyes(20.0), info), path)
    predictor = Predictor.load(path)
    assert predictor.info.upright_above_deg == threshold
    box = np.array([40.0, 30.0, 140.0, 150.0])
    [face] = predictor.predict_image(np.zeros((240, 320, 3), dtype=np.uint8), [box])
    assert get_layout("19").eye_line_deg(face.landmarks[None])[0] == pytest.approx(expected_roll, abs=1e-3)
    centre, scale = (box[:2] + box[2:]) / 2, SIZE / (BOX_SCALE * 120.0)
    turn = np.radians(expected_roll - 20.0)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    expected = centre + (rolled_eyes(20.0) - CENTRE) @ rotation.T / scale
    np.testing.assert_allclose(face.landmarks, expected, atol=1e-3)


def test_a_detected_face_read_again_from_its_own_box_is_turned_upright_both_times(tmp_path: Path) -> None:
    """A 68-point model whose eyes always roll 20 degrees in its crop: the read from the detector's box and the read
    from its own box each take the upright pass, so the answer is the tight read of the first answer's box."""
    pattern = np.full((68, 2), CENTRE, dtype=np.float32)
    pattern[:3] = PATTERN[:3]
    turn = np.radians(20.0)
    pattern[36:42] = CENTRE - 10 * np.array([np.cos(turn), np.sin(turn)])
    pattern[42:48] = CENTRE + 10 * np.array([np.cos(turn), np.sin(turn)])
    info = DeployInfo(model="constant", layout="68", num_points=68, input_size=SIZE, box_scale=BOX_SCALE,
                      upright_above_deg=10.0)  # fmt: skip
    onnx.save(constant_model(pattern, info), tmp_path / "model.onnx")
    predictor = Predictor.load(tmp_path / "model.onnx")
    image, box = np.zeros((240, 320, 3), dtype=np.uint8), np.array([40.0, 30.0, 140.0, 150.0])
    (first,) = predictor.predict_image(image, [box])
    (again,) = predictor.predict_image(image, [box], loose=True)
    own = landmark_box(first.landmarks)
    (tight,) = predictor.predict_image(image, [own])
    np.testing.assert_allclose(again.bbox, own, atol=1e-9)
    np.testing.assert_allclose(again.landmarks, tight.landmarks, atol=1e-6)
    assert get_layout("68").eye_line_deg(again.landmarks[None])[0] == pytest.approx(40.0, abs=1e-3)


def test_a_model_with_no_registered_version_is_named_with_what_to_run() -> None:
    setup_tracking()  # a store that exists, with nothing registered in it
    with pytest.raises(LookupError, match=r"^hih-synthetic: no registered version \(run `make pipeline-run` first\)$"):
        load_registered("hih-synthetic")
