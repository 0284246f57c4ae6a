import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from landmarkflow.data.draw import HIDDEN_COLOUR, VISIBLE_COLOUR, draw_landmarks
from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.synthetic import META_FILE, read_synthetic
from landmarkflow.data.formats.w300 import read_box_file
from landmarkflow.data.synthetic import FaceSpec, Occluder, render_face, synthesize
from landmarkflow.data.synthetic.face3d import TEMPLATE_68, Expression, Glasses, Hair, Identity, Pose, build_face
from landmarkflow.data.synthetic.params import Appearance, Camera, sample_spec
from landmarkflow.data.synthetic.plan import item_spec, plan
from landmarkflow.data.synthetic.render import facial_hair_outlines, wrinkle_lines
from landmarkflow.data.synthetic.synthesis import PARALLEL_FROM, default_workers
from landmarkflow.data.synthetic.w300_files import item_detector_box
from landmarkflow.geometry import landmark_box
from landmarkflow.layouts import IBUG_68

SIZE = 128


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "synthetic"
    synthesize(root, num_train=20, num_test=10, seed=3, image_size=SIZE, challenging_fraction=0.2, progress=False)
    return root


def test_same_seed_same_bytes_and_a_small_dataset_is_a_prefix(rendered: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    synthesize(again, num_train=20, num_test=10, seed=3, image_size=SIZE, challenging_fraction=0.2, progress=False)
    first = _files(rendered)
    assert _files(again) == first
    small = tmp_path / "small"
    synthesize(small, num_train=7, num_test=0, seed=3, image_size=SIZE, progress=False)
    small_images = {k: v for k, v in _files(small).items() if k.endswith((".jpg", ".pts"))}
    assert len(small_images) == 14
    assert all(first[name] == data for name, data in small_images.items())
    other = tmp_path / "other"
    synthesize(other, num_train=7, num_test=0, seed=4, image_size=SIZE, progress=False)
    assert _files(other)["afw/train_000000.jpg"] != first["afw/train_000000.jpg"]


def test_folders_splits_and_subsets_follow_300w(rendered: Path) -> None:
    records = read_synthetic(rendered)
    folders: dict[str, int] = {}
    for r in records:
        folder = r.image_path.rsplit("/", 1)[0]
        folders[folder] = folders.get(folder, 0) + 1
    assert folders == {
        "afw": 2,
        "helen/trainset": 13,
        "lfpw/trainset": 5,
        "helen/testset": 4,
        "lfpw/testset": 4,
        "ibug": 2,
    }
    test = [r for r in records if r.split == "test"]
    assert sum(r.split == "train" for r in records) == 20 and len(test) == 10
    assert sum("common" in r.subsets for r in test) == 8 and sum("challenging" in r.subsets for r in test) == 2
    assert all("full" in r.subsets for r in test)
    assert all(r.dataset == "synthetic" and (r.width, r.height) == (SIZE, SIZE) for r in records)


def test_read_back_gives_the_rendered_landmarks_boxes_and_visibility(rendered: Path) -> None:
    records = {r.sample_id: r for r in read_synthetic(rendered)}
    for item in plan(20, 10, 0.2):
        face = render_face(item_spec(3, item), SIZE)
        detector = item_detector_box(3, item, face.landmarks)
        back = records[item.sample_id]
        np.testing.assert_allclose(back.landmarks, face.landmarks, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(back.visible, face.visible)
        np.testing.assert_allclose(back.bbox, landmark_box(face.landmarks), rtol=0, atol=1e-9)
        boxes = read_box_file(rendered / item.folder.box_file)[f"{item.sample_id.rsplit('/', 1)[1]}.jpg"]
        np.testing.assert_allclose(boxes.detector, detector, atol=1e-9)
        side = boxes.detector[2] - boxes.detector[0]
        assert side == pytest.approx(boxes.detector[3] - boxes.detector[1])
        assert 0.8 < side / (back.bbox[3] - back.bbox[1]) < 1.3


def test_meta_file_records_parameters_and_visibility(rendered: Path) -> None:
    lines = (rendered / META_FILE).read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "sample_id" and header[-1] == "visible" and "yaw" in header and "occluder" in header
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert len(rows) == 30
    for row in rows:
        assert int(row["occluded_points"]) == row["visible"].count("0")
        assert int(row["occluded"]) == (row["visible"].count("0") > 0)
    assert {row["hard"] for row in rows if row["sample_id"].startswith("ibug/")} == {"1"}


def test_worker_processes_render_the_same_bytes(tmp_path: Path) -> None:
    for workers in (1, 2):
        synthesize(tmp_path / str(workers), 10, 4, seed=6, image_size=64, progress=False, workers=workers)
    assert _files(tmp_path / "2") == _files(tmp_path / "1")


def test_default_workers_where_the_os_cannot_say_which_cpus_are_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS and Windows have no os.sched_getaffinity: rendering the default 2300 faces there must not crash."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert (default_workers(PARALLEL_FROM - 1), default_workers(PARALLEL_FROM)) == (1, 3)


def test_landmarks_stay_inside_the_image_for_any_pose() -> None:
    for index in range(40):
        spec = sample_spec(np.random.default_rng([11, index]), hard=index % 2 == 0)
        face = render_face(spec, SIZE)
        assert face.image.shape == (SIZE, SIZE, 3) and face.image.dtype == np.uint8
        assert face.landmarks.min() >= 0 and face.landmarks.max() <= SIZE - 1
    big = render_face(replace(spec, face_size=1.0, position=(1.0, 0.0)), SIZE)
    assert big.landmarks.min() >= 0 and big.landmarks.max() <= SIZE - 1


def _clean(spec: FaceSpec) -> FaceSpec:
    """No blur, noise or colour change, so drawn colours survive to the output."""
    return replace(spec, camera=Camera())


def test_visibility_is_false_exactly_where_an_occluder_covers_a_point() -> None:
    base = _clean(sample_spec(np.random.default_rng(5), hard=False))
    base = replace(base, pose=Pose(), expression=Expression(), face_size=0.7, position=(0.5, 0.5), occluders=())
    colour = (255.0, 0.0, 255.0)
    bar = Occluder(kind="bar", colour=colour, anchor=27, angle=0.0, size=0.3)
    face = render_face(replace(base, occluders=(bar,)), 256)
    hidden = np.flatnonzero(~face.visible)
    assert set(range(36, 48)) <= set(hidden.tolist())
    assert face.visible[48:68].all() and face.visible[5:12].all()
    cols, rows = np.round(face.landmarks).astype(int).T
    painted = np.all(face.image[rows, cols] == np.array(colour, np.uint8), axis=1)
    np.testing.assert_array_equal(painted, ~face.visible)
    np.testing.assert_array_equal(face.occluder_mask[rows, cols] > 0, ~face.visible)
    clear = render_face(base, 256)
    assert clear.visible.all() and not clear.occluder_mask.any()
    np.testing.assert_array_equal(clear.landmarks, face.landmarks)


@pytest.mark.parametrize(
    ("kind", "anchor", "covered"),
    [("hand", 30, [30]), ("sunglasses", 27, [37, 38, 43, 44]), ("mask", 57, [33, 57, 62]), ("blob", 57, [57])],
)
def test_every_occluder_kind_hides_the_points_under_it(kind: str, anchor: int, covered: list[int]) -> None:
    base = _clean(replace(sample_spec(np.random.default_rng(8), hard=False), pose=Pose(), face_size=0.7))
    face = render_face(replace(base, occluders=(Occluder(kind, (0.0, 255.0, 0.0), anchor=anchor, size=0.5),)), 256)
    cols, rows = np.round(face.landmarks).astype(int).T
    assert not face.visible[covered].any() and face.visible.sum() >= 20
    np.testing.assert_array_equal(face.occluder_mask[rows, cols] > 0, ~face.visible)


def test_clear_glasses_sit_on_the_eyes_and_hide_no_landmark() -> None:
    base = _clean(replace(sample_spec(np.random.default_rng(8), hard=False), pose=Pose(yaw=20), face_size=0.7))
    base = replace(base, occluders=(), glasses=None)
    bare, worn = render_face(base, 256), render_face(replace(base, glasses=Glasses()), 256)
    np.testing.assert_array_equal(worn.landmarks, bare.landmarks)
    assert worn.visible.all() and not worn.occluder_mask.any()
    rows, cols = np.nonzero(np.any(worn.image != bare.image, axis=2))
    lm = worn.landmarks
    assert rows.max() < lm[33, 1] < lm[57, 1]  # nothing drawn below the nose
    for eye in (lm[36:42], lm[42:48]):  # each eye is ringed: frame pixels left, right, above and below it
        near = (np.abs(rows - eye[:, 1].mean()) < 40) & (np.abs(cols - eye[:, 0].mean()) < 40)
        assert cols[near].min() < eye[:, 0].min() and cols[near].max() > eye[:, 0].max()
        assert rows[near].min() < eye[:, 1].min() and rows[near].max() > eye[:, 1].max()
    frontal = build_face(Identity(), Expression(), Pose(), Hair(), glasses=Glasses())
    turned = build_face(Identity(), Expression(), Pose(yaw=60), Hair(), glasses=Glasses())
    assert len(frontal.lenses) == len(turned.lenses) == 2
    assert len(frontal.frame) == 3 and len(turned.frame) == 2  # bridge and arms; the far arm hides behind the head


def test_landmarks_sit_on_drawn_structure() -> None:
    """Edges: the image gradient at the landmarks is far above the image's typical gradient."""
    ratios, jaw_ratios = [], []
    for index in range(10):
        spec = _clean(sample_spec(np.random.default_rng([21, index]), hard=False))
        face = render_face(replace(spec, occluders=()), 256)
        grey = cv2.cvtColor(face.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        magnitude = cv2.dilate(magnitude, np.ones((3, 3), np.uint8))  # a point may sit a pixel off its edge
        cols, rows = np.round(face.landmarks).astype(int).T
        ratios.append(magnitude[rows, cols].mean() / magnitude.mean())
        # the jaw is an edge (against neck, hair or scene): far sharper than the cheek a fifth of the way to the nose
        cheek_cols, cheek_rows = np.round(face.landmarks[:17] + 0.2 * (face.landmarks[30] - face.landmarks[:17])).T
        cheek = magnitude[cheek_rows.astype(int), cheek_cols.astype(int)]
        jaw_ratios.append(np.median(magnitude[rows[:17], cols[:17]]) / np.median(cheek))
    assert np.mean(ratios) > 3
    assert min(jaw_ratios) > 3


def test_the_jaw_is_not_always_outlined_and_the_neck_not_always_in_shadow() -> None:
    """A drawn jaw line and a dark neck under every chin would teach the models a cue real photos rarely give."""
    looks = [sample_spec(np.random.default_rng([3, index]), hard=False).appearance for index in range(300)]
    unlined = np.mean([look.jaw_line == 1.0 for look in looks])
    shades = np.array([look.neck_shade for look in looks])
    assert 0.5 < unlined < 0.7
    assert shades.min() < 0.6 and shades.max() > 0.9


@lru_cache(maxsize=1)
def _ordinary_looks() -> list[Appearance]:
    return [sample_spec(np.random.default_rng([5, k]), hard=False).appearance for k in range(200)]


def test_a_mustache_hangs_from_the_upper_lips_edge_as_far_as_the_mouth_line() -> None:
    """Real mustaches often cover the whole upper lip, and the annotators put its points on the mustache's lower
    edge: a mustache that always showed two thirds of the lip taught the models to read its edge as the lip's."""
    geo = build_face(Identity(), Expression(), Pose(), Hair()).transformed(60.0, np.array([64.0, 64.0]))
    top, mouth_line = geo.landmarks[51], geo.landmarks[62]
    for reach in (0.3, 1.0):
        mustache = facial_hair_outlines(geo, "mustache", reach)[0]
        assert np.linalg.norm(mustache - (top + reach * (mouth_line - top)), axis=1).min() < 1e-9
    reaches = np.array([look.mustache_reach for look in _ordinary_looks()])
    assert reaches.min() < 0.4 and reaches.max() > 0.9
    with pytest.raises(ValueError, match=r"mustache_reach 1.5 is outside 0..1"):
        Appearance(mustache_reach=1.5)


def test_wrinkles_darken_the_skin_along_its_folds_and_nothing_else() -> None:
    spec = _clean(sample_spec(np.random.default_rng(5), hard=False))
    spec = replace(spec, pose=Pose(), face_size=0.7, position=(0.5, 0.5), occluders=(), hair=Hair(kind="none"))
    smooth = render_face(replace(spec, appearance=replace(spec.appearance, wrinkles=0.0)), 256)
    creased = render_face(replace(spec, appearance=replace(spec.appearance, wrinkles=1.0)), 256)
    darker = smooth.image.astype(float).sum(axis=2) - creased.image.astype(float).sum(axis=2)
    folds = np.concatenate(wrinkle_lines(smooth.geometry))
    cols, rows = np.round(folds).astype(int).T
    assert np.median(darker[rows, cols]) > 20  # the creases show
    assert (darker >= -1).all() and (darker > 1).mean() < 0.1  # they only darken, and only a little of the image
    head = np.zeros(darker.shape, np.uint8)
    cv2.fillPoly(head, [np.round(smooth.geometry.head).astype(np.int32)], 1)
    assert np.abs(darker[cv2.dilate(head, np.ones((7, 7), np.uint8)) == 0]).max() == 0  # the scene keeps its pixels
    np.testing.assert_array_equal(smooth.landmarks, creased.landmarks)
    assert 0.3 < np.mean([look.wrinkles > 0 for look in _ordinary_looks()]) < 0.5
    with pytest.raises(ValueError, match=r"wrinkles 2 is outside 0..1"):
        Appearance(wrinkles=2)


def test_training_draws_its_own_share_of_hard_faces_and_the_test_split_keeps_300ws() -> None:
    items = plan(1000, 100, 0.2)
    hard = {f: np.mean([item_spec(0, item, f).hard for item in items if item.stream == "train"]) for f in (0.2, 0.4)}
    assert abs(hard[0.2] - 0.2) < 0.04 and abs(hard[0.4] - 0.4) < 0.04
    assert sum(item.stream == "challenging" for item in items) == 20


def test_a_share_of_ordinary_training_faces_turns_wide_and_the_test_faces_stay_as_they_were(tmp_path: Path) -> None:
    items = plan(1000, 100, 0.2)
    narrow = [item_spec(0, item, wide_yaw_train_fraction=0.0) for item in items]
    wide = [item_spec(0, item, wide_yaw_train_fraction=0.25) for item in items]
    train = [(a, b) for item, a, b in zip(items, narrow, wide, strict=True) if item.stream == "train"]
    assert all(a.hard == b.hard for a, b in train)
    assert all(a == b for a, b in train if a.hard)
    ordinary = [(a, b) for a, b in train if not a.hard]
    turned = [b for a, b in ordinary if a.pose.yaw != b.pose.yaw]
    assert abs(len(turned) / len(train) - 0.25) < 0.04
    assert max(abs(a.pose.yaw) for a, _ in ordinary) <= 45.0
    assert 0.3 < np.mean([abs(b.pose.yaw) > 45.0 for b in turned]) < 0.4  # uniform up to 65 degrees
    assert all(not b.hard and b.occluders == a.occluders and b.camera == a.camera for a, b in ordinary)
    assert [s for item, s in zip(items, narrow, strict=True) if item.stream != "train"] == [
        s for item, s in zip(items, wide, strict=True) if item.stream != "train"
    ]
    with pytest.raises(ValueError, match=r"wide_yaw_train_fraction must lie in \[0, 1\], got 1.5"):
        synthesize(tmp_path, num_train=2, num_test=0, wide_yaw_train_fraction=1.5, progress=False)


def test_template_is_the_ibug_68_markup() -> None:
    x, y = TEMPLATE_68[:, 0], TEMPLATE_68[:, 1]
    perm = list(IBUG_68.flip_permutation)
    np.testing.assert_allclose(x[perm], -x, atol=1e-12)
    np.testing.assert_allclose(y[perm], y, atol=1e-12)
    assert x[36] < x[39] < x[42] < x[45] and x[48] < x[51] < x[54]  # eyes and mouth corners left to right
    assert y[19] < y[37] < y[30] < y[33] < y[51] < y[57] < y[8]  # brow, eye, nose tip, nose base, lips, chin
    assert y[8] == y.max() and x[0] == x.min() and x[16] == x.max()


def test_the_ordinary_faces_drawn_frontally_average_to_the_300w_mean_shape() -> None:
    def by_the_eyes(points: np.ndarray) -> np.ndarray:
        right, left = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
        return (points - (right + left) / 2) / np.linalg.norm(left - right)

    faces = [sample_spec(np.random.default_rng([3, i]), hard=False) for i in range(200)]
    drawn = [build_face(f.identity, f.expression, Pose(), f.hair).landmarks for f in faces]
    mean, template = np.mean([by_the_eyes(p) for p in drawn], axis=0), by_the_eyes(TEMPLATE_68[:, :2])
    off = np.linalg.norm(mean - template, axis=1)
    # the template's inner lips are closed; the faces open their mouths on average as 300W's do
    assert np.delete(off, [65, 66, 67]).max() < 0.04 and off.mean() < 0.015
    width = np.ptp(mean[:17, 0]) / np.ptp(template[:17, 0])  # the camera's perspective does not narrow the jaw
    assert abs(width - 1) < 0.01


def test_a_mirrored_pose_gives_mirrored_landmarks() -> None:
    hair = Hair()
    right = build_face(Identity(), Expression(smile=0.5), Pose(yaw=25, pitch=10, roll=8), hair).landmarks
    left = build_face(Identity(), Expression(smile=0.5), Pose(yaw=-25, pitch=10, roll=-8), hair).landmarks
    np.testing.assert_allclose(left, IBUG_68.flip_points(right, width=1), atol=1e-9)  # width 1: x -> -x


def test_yaw_turns_the_head() -> None:
    def nose_offset(yaw: float) -> float:
        lm = build_face(Identity(), Expression(), Pose(yaw=yaw), Hair()).landmarks
        return (lm[30, 0] - (lm[0, 0] + lm[16, 0]) / 2) / (lm[16, 0] - lm[0, 0])

    assert nose_offset(-30) < nose_offset(-10) < abs(nose_offset(0)) < nose_offset(10) < nose_offset(30)
    assert abs(nose_offset(0)) < 1e-9
    frontal = build_face(Identity(), Expression(), Pose(), Hair()).landmarks
    turned = build_face(Identity(), Expression(), Pose(yaw=40), Hair()).landmarks
    width = lambda lm: lm[45, 0] - lm[36, 0]  # noqa: E731
    assert width(turned) < 0.85 * width(frontal)


def test_a_turned_head_shows_its_side_and_the_near_ear() -> None:
    """A head is deeper than wide: turned 60 degrees, the skull reaches far beyond the near jaw and the near ear lies
    on it; seen from the front both ears are behind the head and only their rims stick out."""
    frontal = build_face(Identity(), Expression(), Pose(), Hair())
    assert not frontal.ears_on_head and len(frontal.ears_behind) == 2
    turned = build_face(Identity(), Expression(), Pose(yaw=60), Hair())  # the nose points to +x: -x comes near
    jaw_x, head_x = turned.landmarks[:17, 0], turned.head[:, 0]
    face_width = jaw_x.max() - jaw_x.min()
    assert turned.landmarks[30, 0] > jaw_x.max() - 0.2 * face_width
    assert jaw_x.min() - head_x.min() > 0.4 * face_width
    assert len(turned.ears_on_head) == 1 and head_x.min() < turned.ears_on_head[0][:, 0].mean() < jaw_x.min()


def test_an_open_mouth_separates_the_inner_lips() -> None:
    closed = build_face(Identity(), Expression(), Pose(), Hair()).landmarks
    opened = build_face(Identity(), Expression(mouth_open=1.0), Pose(), Hair()).landmarks
    assert abs(closed[66, 1] - closed[62, 1]) < 1e-9
    assert opened[66, 1] - opened[62, 1] > 0.25 and opened[8, 1] > closed[8, 1]


def test_synthesize_refuses_a_folder_with_a_dataset(rendered: Path) -> None:
    with pytest.raises(FileExistsError, match=r"already holds 30 \.pts files"):
        synthesize(rendered, 1, 0, progress=False)


def test_synthesize_names_a_negative_seed(tmp_path: Path) -> None:
    """Not numpy's bare "expected non-negative integer", which `data synth --seed -1` printed."""
    with pytest.raises(ValueError, match="seed must not be negative"):
        synthesize(tmp_path / "s", 1, 1, seed=-1, image_size=64, progress=False)
    assert not (tmp_path / "s").exists()


def test_read_synthetic_needs_a_matching_meta_file(tmp_path: Path) -> None:
    root = tmp_path / "s"
    synthesize(root, 3, 0, seed=1, image_size=64, progress=False)
    meta = root / META_FILE
    text = meta.read_text()
    meta.write_text("\n".join(text.splitlines()[:-1]) + "\n")
    with pytest.raises(FormatError, match=r"1 faces lack a row \(e\.g\. \['helen/trainset/train_000002'\]\)"):
        read_synthetic(root)
    meta.write_text(text.replace(text.splitlines()[1].rsplit(",", 1)[1], "0101"))
    with pytest.raises(FormatError, match=rf"^{meta}:2: visible must be 68 characters 0/1, found '0101'"):
        read_synthetic(root)
    meta.unlink()
    with pytest.raises(FormatError, match="missing: not a synthetic dataset, or its rendering was interrupted"):
        read_synthetic(root)


def test_draw_landmarks_marks_visible_green_and_hidden_red() -> None:
    image = np.zeros((20, 20), np.uint8)
    points = np.array([[5.0, 5.0], [14.0, 14.0]])
    out = draw_landmarks(image, points, np.array([True, False]))
    assert out.shape == (20, 20, 3) and not image.any()
    assert tuple(out[5, 5]) == VISIBLE_COLOUR and tuple(out[14, 14]) == HIDDEN_COLOUR
    with pytest.raises(ValueError, match="2 points but 3 visibility flags"):
        draw_landmarks(image, points, np.ones(3, bool))
