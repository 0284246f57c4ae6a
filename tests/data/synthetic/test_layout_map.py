from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from landmarkflow.cli import app
from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.manifest import FaceRecord, to_frame
from landmarkflow.data.synthetic import RenderedFace, render_face, synthesize
from landmarkflow.data.synthetic.benchmark_files import wflw_attributes
from landmarkflow.data.synthetic.face3d import Expression, Hair, Identity, Pose, build_face
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS, SOURCES, DrawnFeatures, annotate
from landmarkflow.data.synthetic.params import FaceSpec
from landmarkflow.data.synthetic.plan import item_spec, plan
from landmarkflow.data.synthetic.render import spline
from landmarkflow.data.synthetic.synthesis import LAYOUT_FILES, placements
from landmarkflow.data.validation.run import validate_manifest
from landmarkflow.layouts import get_layout

SEED, TRAIN, TEST, SIZE, HARD = 5, 6, 6, 128, 0.5
NATIVE = ("98", "29", "19")


@dataclass
class Face:
    """One planned face: its render (with 68 points) and its record as a layout's real reader returned it."""

    spec: FaceSpec
    rendered: RenderedFace
    record: FaceRecord


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Face]]]:
    """Every layout written by `synthesize` and read back by its dataset's reader, faces in plan order."""
    items = plan(TRAIN, TEST, HARD)
    renders = [(spec, render_face(spec, SIZE)) for spec in (item_spec(SEED, item, HARD) for item in items)]
    out = {}
    for layout, dataset in LAYOUT_DATASETS.items():
        root = tmp_path_factory.mktemp(f"synth{layout}")
        synthesize(
            root,
            TRAIN,
            TEST,
            seed=SEED,
            image_size=SIZE,
            challenging_fraction=HARD,
            hard_train_fraction=HARD,
            progress=False,
            layout=layout,
        )
        records = {r.sample_id: r for r in read_dataset(dataset, root)}
        assert len(records) == len(items)
        faces = [
            Face(spec, face, records[place.sample_id])
            for (spec, face), place in zip(renders, placements(items, layout), strict=True)
        ]
        out[layout] = (root, faces)
    return out


def test_every_layout_has_a_complete_source_table() -> None:
    assert set(SOURCES) == set(LAYOUT_DATASETS) == set(LAYOUT_FILES) == {"68", "98", "29", "19"}
    for layout, sources in SOURCES.items():
        assert len(sources) == get_layout(layout).num_points


@pytest.mark.parametrize("layout", NATIVE)
def test_the_tables_agree_with_the_layouts_flip_permutations(layout: str) -> None:
    """A mirrored head (and gaze) must give the mirrored points, permuted by the layout's own flip table.

    Vertical gaze is left at 0: the renderer measures each eye's height from its points 1 and 5, which are not
    mirror images between the two eyes, so a vertical gaze moves the pupils very slightly asymmetrically."""
    expression = Expression(smile=0.4, mouth_open=0.3, brow_raise=0.2)
    right = build_face(Identity(), expression, Pose(yaw=25, pitch=10, roll=8), Hair())
    left = build_face(Identity(), expression, Pose(yaw=-25, pitch=10, roll=-8), Hair())
    points = DrawnFeatures.from_geometry(right, 1.3, (0.3, 0.0)).points(layout)
    mirrored = DrawnFeatures.from_geometry(left, 1.3, (-0.3, 0.0)).points(layout)
    np.testing.assert_allclose(mirrored, get_layout(layout).flip_points(points, width=1), atol=1e-9)


@pytest.mark.parametrize("layout", NATIVE)
def test_readers_give_back_the_rendered_faces_in_each_layout(
    datasets: dict[str, tuple[Path, list[Face]]], layout: str
) -> None:
    _, faces = datasets[layout]
    assert sum(f.record.split == "train" for f in faces) == TRAIN and len(faces) == TRAIN + TEST
    for face in faces:
        points, visible = annotate(face.rendered, face.spec, layout)
        record = face.record
        assert record.layout == layout and record.dataset == LAYOUT_DATASETS[layout]
        assert (record.width, record.height) == (SIZE, SIZE) and record.landmarks.shape == (len(points), 2)
        np.testing.assert_allclose(record.landmarks, points, rtol=0, atol=1e-9)
        if layout != "98":  # WFLW files hold no visibility: its reader marks every point visible
            np.testing.assert_array_equal(record.visible, visible)
        assert (record.landmarks >= record.bbox[:2]).all() and (record.landmarks <= record.bbox[2:]).all()


@pytest.mark.parametrize("layout", list(LAYOUT_DATASETS))
def test_every_layouts_eye_line_reads_the_heads_roll(datasets: dict[str, tuple[Path, list[Face]]], layout: str) -> None:
    """The upright pass turns a crop by the layout's eye line: on rendered faces (yaw up to ~60 degrees, which
    tilts a perspective eye line a little) it reads the head's roll within 3.5 degrees, sign included."""
    _, faces = datasets[layout]
    rolls = np.array([face.spec.pose.roll for face in faces])
    lines = get_layout(layout).eye_line_deg(np.stack([face.record.landmarks for face in faces]))
    assert np.abs(rolls).max() > 10
    np.testing.assert_allclose(lines, rolls, atol=3.5)


def test_wflw_points_continue_the_68_markup(datasets: dict[str, tuple[Path, list[Face]]]) -> None:
    for face in datasets["98"][1]:
        lm68, lm98 = face.rendered.landmarks, face.record.landmarks
        np.testing.assert_allclose(lm98[0:33:2], lm68[0:17], atol=1e-9)  # jaw ends and every jaw point
        jaw_curve = spline(lm68[:17], steps=16)
        gaps = np.linalg.norm(lm98[1:33:2, None] - jaw_curve[None], axis=-1).min(axis=1)
        assert gaps.max() < 1e-9  # odd contour points lie on the drawn jaw (t = 1/2 is a sample of steps=16)
        np.testing.assert_allclose(lm98[[60, 64, 68, 72]], lm68[[36, 39, 42, 45]], atol=1e-9)  # eye corners
        np.testing.assert_allclose(lm98[33:38], lm68[17:22], atol=1e-9)  # brow upper edges
        np.testing.assert_allclose(lm98[51:60], lm68[27:36], atol=1e-9)
        np.testing.assert_allclose(lm98[76:96], lm68[48:68], atol=1e-9)
        assert (lm98[38:42, 1] > lm98[[37, 36, 35, 34], 1]).all()  # lower brow edge under the upper one
        assert _inside(lm68[36:42], lm98[96]) and _inside(lm68[42:48], lm98[97])


def test_wflw_attribute_flags_follow_the_rendering(datasets: dict[str, tuple[Path, list[Face]]]) -> None:
    flagged: set[str] = set()
    for face in datasets["98"][1]:
        _, visible = annotate(face.rendered, face.spec, "98")
        assert face.record.subsets == wflw_attributes(face.spec, visible)
        assert ("occlusion" in face.record.subsets) == (not visible.all())
        assert ("largepose" in face.record.subsets) == (
            abs(face.spec.pose.yaw) >= 30 or abs(face.spec.pose.pitch) >= 20
        )
        assert "makeup" not in face.record.subsets
        flagged |= set(face.record.subsets)
    assert len(flagged) >= 2


def test_cofw_points_have_cofw_semantics(datasets: dict[str, tuple[Path, list[Face]]]) -> None:
    for face in datasets["29"][1]:
        lm68, lm29 = face.rendered.landmarks, face.record.landmarks
        np.testing.assert_allclose(lm29[[8, 9, 10, 11]], lm68[[36, 45, 39, 42]], atol=1e-9)  # eye corners
        np.testing.assert_allclose(lm29[[20, 21, 22, 23, 28]], lm68[[30, 33, 48, 54, 8]], atol=1e-9)
        assert _inside(lm68[36:42], lm29[16]) and _inside(lm68[42:48], lm29[17])  # pupils in the eyes
        assert _inside(lm29[[8, 12, 10, 13]], lm29[16]) and _inside(lm29[[9, 14, 11, 15]], lm29[17])  # lids
        assert lm29[4, 1] < lm29[5, 1] and lm29[6, 1] < lm29[7, 1]  # brow top above brow bottom
        np.testing.assert_array_equal(face.record.visible[[8, 9, 20, 28]], face.rendered.visible[[36, 45, 30, 8]])
    assert any(not f.record.visible.all() for f in datasets["29"][1])  # occlusion flags written and read


def test_aflw_points_have_aflw_semantics(datasets: dict[str, tuple[Path, list[Face]]]) -> None:
    faces = datasets["19"][1]
    for face in faces:
        lm68, lm19 = face.rendered.landmarks, face.record.landmarks
        np.testing.assert_allclose(lm19[13], lm68[30], atol=1e-6)  # nose tip
        np.testing.assert_allclose(lm19[[6, 8, 9, 11, 15, 17, 18]], lm68[[36, 39, 42, 45, 48, 54, 8]], atol=1e-6)
        assert _inside(lm68[36:42], lm19[7]) and _inside(lm68[42:48], lm19[10])  # eye centres on the pupils
        assert lm19[12, 0] < lm19[13, 0] < lm19[14, 0] or abs(face.spec.pose.yaw) > 30
        expected = face.record.split == "test" and face.record.visible.all()  # every point lies in the box
        assert face.record.subsets == (("frontal",) if expected else ())
    assert sum(f.record.split == "test" for f in faces) == TEST


@pytest.mark.parametrize("layout", LAYOUT_DATASETS)
def test_validation_passes_on_every_layout(datasets: dict[str, tuple[Path, list[Face]]], layout: str) -> None:
    root, faces = datasets[layout]
    result = validate_manifest(to_frame([f.record for f in faces]), root)
    assert result.success, result


def test_a_native_layout_needs_an_empty_folder_and_its_splits(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="is not empty"):
        synthesize(tmp_path / "full", 2, 2, image_size=64, progress=False, layout="98")
    with pytest.raises(ValueError, match="the aflw layout needs test faces"):
        synthesize(tmp_path / "a", 2, 0, image_size=64, progress=False, layout="19")
    with pytest.raises(ValueError, match="unknown layout '30'"):
        synthesize(tmp_path / "b", 2, 2, image_size=64, progress=False, layout="30")


def test_a_wflw_layout_without_test_faces_reads_back(tmp_path: Path) -> None:
    synthesize(tmp_path / "w", 2, 0, image_size=64, progress=False, layout="98")
    assert [r.split for r in read_dataset("wflw", tmp_path / "w")] == ["train", "train"]


def test_cli_synth_names_the_dataset_to_ingest(tmp_path: Path) -> None:
    root = tmp_path / "cofw"
    result = CliRunner().invoke(
        app, ["data", "synth", "--out", str(root), "--train", "2", "--test", "1", "--size", "64", "--layout", "29"]
    )
    assert result.exit_code == 0, result.output
    assert "ingest with --dataset cofw" in result.output and "3 faces" in result.output
    assert len(read_dataset("cofw", root)) == 3


@pytest.mark.parametrize("layout", ["68", "98"])
def test_cli_synth_into_a_file_or_a_folder_it_cannot_write_says_so(tmp_path: Path, layout: str) -> None:
    (tmp_path / "taken").write_text("x")
    for out, said in ((tmp_path / "taken", "is a file"), (tmp_path / "taken" / "sub", "Not a directory")):
        args = ["data", "synth", "--out", str(out), "--train", "1", "--test", "1", "--size", "64", "--layout", layout]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert said in result.output


def _inside(eye: np.ndarray, point: np.ndarray) -> bool:
    """Whether `point` lies inside the polygon of an eye's points."""
    polygon = eye.astype(np.float32).reshape(-1, 1, 2)
    return cv2.pointPolygonTest(polygon, (float(point[0]), float(point[1])), False) > 0
