import struct
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.w300 import (
    FOLDERS,
    FaceBoxes,
    image_size,
    read_300w,
    read_300w_with_report,
    read_box_file,
    read_hrnet_csv,
    read_pts,
    write_300w,
    write_box_file,
    write_hrnet_csv,
    write_pts,
)
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.geometry import landmark_box


def _face(folder: str, name: str, seed: int, suffix: str = ".jpg") -> tuple[FaceRecord, np.ndarray]:
    """A record placed in `folder` (split and subsets as 300W defines them) and its image."""
    spec = next(f for f in FOLDERS if f.path == folder)
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(60, 90)), int(rng.integers(60, 90))
    points = rng.uniform(5, 55, size=(68, 2))
    record = FaceRecord(
        sample_id=f"{folder}/{name}",
        dataset="300w",
        split=spec.split,
        subsets=list(spec.subsets),
        image_path=f"{folder}/{name}{suffix}",
        width=width,
        height=height,
        bbox=landmark_box(points) + np.array([-2.5, -3.0, 1.25, 4.0]),
        landmarks=points,
        visible=np.ones(68, dtype=bool),
        layout="68",
    )
    return record, rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _dataset(tmp_path: Path) -> tuple[Path, list[FaceRecord]]:
    faces = [_face(f.path, f"img_{i}", seed=10 * n + i) for n, f in enumerate(FOLDERS) for i in range(2)]
    faces.append(_face("ibug", "image_092 _01", seed=99, suffix=".png"))  # 300W has a name with a space
    records = [r for r, _ in faces]
    root = write_300w(records, tmp_path / "300w", images={r.sample_id: im for r, im in faces})
    return root, records


def test_pts_round_trip_is_exact_to_1e6_and_one_based_on_disk(tmp_path: Path) -> None:
    points = np.random.default_rng(0).uniform(-3, 500, size=(68, 2))
    path = write_pts(tmp_path / "a.pts", points)
    lines = path.read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points: 68", "{"] and lines[-1] == "}"
    assert [float(v) for v in lines[3].split()] == pytest.approx(points[0] + 1, abs=1e-6)
    np.testing.assert_allclose(read_pts(path), points, rtol=0, atol=1e-6)


def _pts_text(lines: list[str], n_points: int = 3) -> str:
    return "\n".join(["version: 1", f"n_points: {n_points}", "{", *lines, "}"]) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "version: 1\nn_points: 3\n{\n1 2\n2 3\n",
            5,
            r"truncated: n_points \(line 2\) says 3 but the file ends after 2",
        ),
        ("version: 1\nn_points: 3\n{\n1 2\n2 3\n3 4\n", 6, r"truncated: expected '}' after the 3 points"),
        ("version: 1\nn_points: 3\n", 2, "truncated: no '{'"),
        (_pts_text(["1 2", "2 3"]), 6, r"n_points \(line 2\) says 3 but '}' closes the list after 2 points"),
        (_pts_text(["1 2", "2 3", "3 4", "4 5"]), 7, r"expected '}' after 3 points \(n_points, line 2\), found '4 5'"),
        (_pts_text(["1 2", "2 x", "3 4"]), 5, "non-numeric coordinate in '2 x'; expected two numbers"),
        (_pts_text(["1 2", "2 nan", "3 4"]), 5, "not finite in '2 nan'"),
        (_pts_text(["1 2", "2 3", "inf 4"]), 6, "not finite in 'inf 4'"),
        (_pts_text(["1 2", "2 3 4", "3 4"]), 5, "expected two numbers 'x y', found 3 fields"),
        ("version: 1\n{\n1 2\n}\n", 2, "lacks 'n_points: K'"),
        ("version: 1\nn_points: many\n{\n}\n", 2, "n_points must be an integer, found 'many'"),
    ],
)
def test_pts_errors_name_file_line_and_expectation(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "face.pts"
    path.write_text(text)
    with pytest.raises(FormatError, match=message) as caught:
        read_pts(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert caught.value.line == line and caught.value.path == path


def test_folder_round_trip_with_box_files(tmp_path: Path) -> None:
    root, records = _dataset(tmp_path)
    back, report = read_300w_with_report(root)
    folder_rank = {f.path: i for i, f in enumerate(FOLDERS)}
    ordered = sorted(records, key=lambda r: (folder_rank[r.image_path.rsplit("/", 1)[0]], r.image_path))
    assert [r.sample_id for r in back] == [r.sample_id for r in ordered]
    by_id = {r.sample_id: r for r in records}
    for got in back:
        want = by_id[got.sample_id]
        np.testing.assert_allclose(got.landmarks, want.landmarks, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.bbox, want.bbox, rtol=0, atol=1e-12)
        assert (got.split, got.subsets, got.image_path) == (want.split, want.subsets, want.image_path)
        assert (got.width, got.height, got.layout, got.dataset) == (want.width, want.height, "68", "300w")
        assert got.visible.all()
    assert report.boxes_from_files == len(records) and report.boxes_from_landmarks == 0
    assert report.faces_per_split == {"train": 6, "test": 7, "private": 4}  # 300W-private is no test face
    assert report.faces_per_subset == {"common": 4, "full": 7, "challenging": 3}
    assert report.faces_per_folder["ibug"] == 3


def test_box_files_hold_300w_structure_one_based_and_reproducible(tmp_path: Path) -> None:
    boxes = {"b.jpg": FaceBoxes(np.array([0.0, 1, 10, 12]), np.array([-1.0, 0, 11, 13]))}
    first = write_box_file(tmp_path / "one.mat", boxes).read_bytes()
    second = write_box_file(tmp_path / "two.mat", boxes).read_bytes()
    assert first == second and first.startswith(b"MATLAB 5.0 MAT-file")
    import scipy.io

    raw = scipy.io.loadmat(str(tmp_path / "one.mat"))["bounding_boxes"]
    entry = raw[0, 0][0, 0]
    assert str(entry["imgName"][0]) == "b.jpg"
    np.testing.assert_array_equal(entry["bb_ground_truth"], [[1.0, 2, 11, 13]])
    back = read_box_file(tmp_path / "one.mat")["b.jpg"]
    np.testing.assert_array_equal(back.detector, [-1.0, 0, 11, 13])


def test_detector_boxes_are_written_beside_ground_truth(tmp_path: Path) -> None:
    record, image = _face("afw", "x", seed=3)
    detector = np.array([1.0, 2.0, 40.0, 41.0])
    write_300w([record], tmp_path, images={record.sample_id: image}, detector_boxes={record.sample_id: detector})
    boxes = read_box_file(tmp_path / "Bounding Boxes" / "bounding_boxes_afw.mat")
    np.testing.assert_array_equal(boxes["x.jpg"].detector, detector)
    np.testing.assert_allclose(boxes["x.jpg"].ground_truth, record.bbox)


def test_without_box_files_the_box_is_the_landmark_box(tmp_path: Path) -> None:
    root, _ = _dataset(tmp_path)
    for mat in (root / "Bounding Boxes").iterdir():
        mat.unlink()
    back, report = read_300w_with_report(root)
    assert report.boxes_from_landmarks == len(back)
    for record in back:
        np.testing.assert_array_equal(record.bbox, landmark_box(record.landmarks))


def test_an_unreadable_box_file_is_listed_leniently_and_refused_strictly(tmp_path: Path) -> None:
    """Lenient reading lists the file and keeps its folder's faces, boxed by their landmarks as without a box file."""
    root, records = _dataset(tmp_path)
    box_file = root / "Bounding Boxes" / "bounding_boxes_afw.mat"
    box_file.write_bytes(b"not a MATLAB file\n" * 20)
    with pytest.raises(FormatError, match=r"bounding_boxes_afw\.mat: not a readable MATLAB v5 box file"):
        read_300w(root)

    back, report = read_300w_with_report(root, strict=False)
    assert [(problem.path, problem.check) for problem in report.problems] == [(box_file, "annotation_format")]
    assert str(report.problems[0]).startswith(f"{box_file}: not a readable MATLAB v5 box file")
    assert len(back) == len(records) and report.boxes_from_landmarks == 2
    for record in back:
        if record.image_path.startswith("afw/"):
            np.testing.assert_array_equal(record.bbox, landmark_box(record.landmarks))


def test_images_without_pts_are_skipped_and_pts_without_an_image_are_broken(tmp_path: Path) -> None:
    root, records = _dataset(tmp_path)
    cv2.imwrite(str(root / "afw" / "lonely.jpg"), np.zeros((8, 8, 3), np.uint8))
    back, report = read_300w_with_report(root)
    assert len(back) == len(records) and report.images_without_pts == ["afw/lonely.jpg"]
    assert "skipped 1 images without .pts (afw/lonely.jpg)" in report.summary()

    orphan = root / "ibug" / "orphan.pts"
    write_pts(orphan, np.zeros((68, 2)))
    with pytest.raises(FormatError, match=r"orphan\.pts: no image orphan\.\* beside it \(expected one of \.jpg"):
        read_300w_with_report(root)
    back, report = read_300w_with_report(root, strict=False)
    assert len(back) == len(records)
    assert [(problem.path, problem.check) for problem in report.problems] == [(orphan, "image_exists")]
    orphan.unlink()
    for number in range(4):
        cv2.imwrite(str(root / "afw" / f"stray{number}.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert "5 images without .pts (afw/lonely.jpg, afw/stray0.jpg, afw/stray1.jpg, +2 more)" in (
        read_300w_with_report(root)[1].summary()
    )


def test_a_wrong_folder_lists_the_expected_ones(tmp_path: Path) -> None:
    (tmp_path / "300W").mkdir()
    with pytest.raises(FormatError, match=r"expected some of afw/, helen/trainset/.*found \['300W/'\]"):
        read_300w(tmp_path)
    (tmp_path / "afw").mkdir()
    with pytest.raises(FormatError, match=r"found the folders afw/ but no image with a same-named \.pts"):
        read_300w(tmp_path)


def test_pts_with_the_wrong_point_count_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afw").mkdir()
    cv2.imwrite(str(tmp_path / "afw" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    write_pts(tmp_path / "afw" / "a.pts", np.zeros((5, 2)))
    with pytest.raises(FormatError, match=r"a\.pts: holds 5 points; 300W's layout 68 expects 68"):
        read_300w(tmp_path)


def test_writer_refuses_records_that_would_not_read_back(tmp_path: Path) -> None:
    record, image = _face("afw", "a", seed=1)
    with pytest.raises(FormatError, match=r"split 'test' subsets \[\], but afw/ holds split 'train'"):
        write_300w([replace(record, split="test")], tmp_path, images={record.sample_id: image})
    record = replace(record, image_path="elsewhere/a.jpg")
    with pytest.raises(FormatError, match="must lie directly in one of afw/"):
        write_300w([record], tmp_path, images={record.sample_id: image})
    record, _ = _face("afw", "a", seed=1)
    with pytest.raises(FormatError, match="no image given and none on disk"):
        write_300w([record], tmp_path)
    assert not any(tmp_path.rglob("*.*"))


def test_image_size_reads_headers_like_opencv(tmp_path: Path) -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    for name in ("a.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), image)
        assert image_size(tmp_path / name) == (53, 37)
    jpeg = (tmp_path / "a.jpg").read_bytes()
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"  # OpenCV would apply its orientation: decode instead
    (tmp_path / "exif.jpg").write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:])
    assert image_size(tmp_path / "exif.jpg") == (53, 37)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(FormatError, match="cannot read this image"):
        image_size(tmp_path / "bad.jpg")


def test_hrnet_csv_round_trip_keeps_points_and_a_square_box(tmp_path: Path) -> None:
    root, records = _dataset(tmp_path)
    test_records = [r for r in records if r.split == "test"]
    path = write_hrnet_csv(test_records, root / "face_landmarks_300w_test.csv")
    assert path.read_text().splitlines()[0].startswith("image_name,scale,center_w,center_h,x0,y0,x1,y1,")
    back = read_hrnet_csv(path, dataset="300w", split="test", subsets=["full"])
    for got, want in zip(back, test_records, strict=True):
        np.testing.assert_array_equal(got.landmarks, want.landmarks)
        side = max(want.bbox[2] - want.bbox[0], want.bbox[3] - want.bbox[1])
        centre = (want.bbox[:2] + want.bbox[2:]) / 2
        np.testing.assert_allclose(got.bbox, np.concatenate([centre - side / 2, centre + side / 2]), atol=1e-9)
        assert (got.sample_id, got.image_path, got.width, got.height) == (
            want.sample_id,
            want.image_path,
            want.width,
            want.height,
        )
        assert got.subsets == ("full",) and got.split == "test"


def test_hrnet_csv_errors_name_file_and_line(tmp_path: Path) -> None:
    root, records = _dataset(tmp_path)
    path = write_hrnet_csv(records[:2], root / "train.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], lines[2].replace(lines[2].split(",")[5], "abc", 1)]) + "\n")
    with pytest.raises(FormatError, match=rf"^{path}:3: non-numeric field"):
        read_hrnet_csv(path, dataset="300w", split="train")
    path.write_text("\n".join([lines[0], lines[1] + ",7"]) + "\n")
    with pytest.raises(FormatError, match=rf"^{path}:2: expected 140 fields, found 141"):
        read_hrnet_csv(path, dataset="300w", split="train")
    path.write_text("image_name,scale\n")
    with pytest.raises(FormatError, match=rf"^{path}:1: expected a header of 140 columns"):
        read_hrnet_csv(path, dataset="300w", split="train")
