import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from landmarkflow.data.formats.cofw import (
    COFW68_BOXES,
    annotation_file,
    read_cofw,
    read_cofw68,
    read_cofw_with_report,
    write_cofw,
    write_cofw68,
)
from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.matlab import read_mat, write_mat
from landmarkflow.data.formats.readers import read_dataset, read_dataset_leniently
from landmarkflow.data.manifest import FaceRecord


def _dyadic(rng: np.random.Generator, low: float, high: float, size: tuple[int, ...]) -> np.ndarray:
    """Values on a 1/256 grid, which the 1-based shift keeps exact (real data is exact to its print precision)."""
    return np.round(rng.uniform(low, high, size=size) * 256) / 256


def _face(split: str, index: int, layout: str = "29") -> tuple[FaceRecord, np.ndarray]:
    rng = np.random.default_rng(100 * (split == "test") + index + 7 * (layout == "68"))
    points = int(layout)
    width, height = int(rng.integers(40, 70)), int(rng.integers(40, 70))
    grey = index == 1  # COFW holds some grey images, stored H×W
    shape = (height, width) if grey else (height, width, 3)
    x1, y1 = _dyadic(rng, 0, 5, (2,))
    record = FaceRecord(
        sample_id=f"{split}/{index:04d}",
        dataset="cofw" if layout == "29" else "cofw68",
        split=split,
        image_path=f"images/{split}/{index:04d}.png",
        width=width,
        height=height,
        bbox=np.array([x1, y1, x1 + 30.5, y1 + 33.25]),
        landmarks=_dyadic(rng, 2, 38, (points, 2)),
        visible=rng.random(points) > 0.3,
        layout=layout,
    )
    return record, rng.integers(0, 256, size=shape, dtype=np.uint8)


def _dataset(root: Path, version: str, train: int = 3, test: int = 3) -> tuple[list[FaceRecord], dict]:
    faces = [_face("train", i) for i in range(train)] + [_face("test", i) for i in range(test)]
    records, images = [r for r, _ in faces], {r.sample_id: im for r, im in faces}
    write_cofw(records, root, images=images, version=version)
    return records, images


def _same(got: list[FaceRecord], want: list[FaceRecord]) -> None:
    assert [r.sample_id for r in got] == [r.sample_id for r in want]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(a.bbox, b.bbox)
        np.testing.assert_array_equal(a.visible, b.visible)
        assert (a.split, a.subsets, a.image_path, a.width, a.height, a.layout, a.dataset) == (
            b.split,
            b.subsets,
            b.image_path,
            b.width,
            b.height,
            b.layout,
            b.dataset,
        )


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_round_trip_is_exact_and_exports_the_images(tmp_path: Path, version: str) -> None:
    records, images = _dataset(tmp_path, version)
    back, report = read_cofw_with_report(tmp_path)
    _same(back, records)
    for record in back:
        on_disk = cv2.imread(str(tmp_path / record.image_path), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(on_disk, images[record.sample_id])
    assert report.faces_per_split == {"train": 3, "test": 3}
    assert (report.images_written, report.images_kept) == (6, 0)
    _, again = read_cofw_with_report(tmp_path)
    assert (again.images_written, again.images_kept) == (0, 6)
    (tmp_path / "images/test/0002.png").write_bytes(b"stale")
    _, third = read_cofw_with_report(tmp_path)
    assert (third.images_written, third.images_kept) == (1, 5)
    _same(read_dataset("cofw", tmp_path), records)


def test_a_root_the_images_cannot_be_written_into_says_why_they_are_written(tmp_path: Path) -> None:
    _dataset(tmp_path, "5")
    shutil.rmtree(tmp_path / "images", ignore_errors=True)
    (tmp_path / "images").write_text("a file where the exported images' folder goes")
    with pytest.raises(FormatError, match=r"images/train/0000\.png: cannot write the image \(.*\): COFW's images live"):
        read_cofw(tmp_path)


def test_writing_back_from_exported_images_gives_the_same_files(tmp_path: Path) -> None:
    records, _ = _dataset(tmp_path / "a", "5")
    back = read_cofw(tmp_path / "a")
    write_cofw(back, tmp_path / "a", version="5")  # images now come from the exported PNGs
    assert (tmp_path / "a/COFW_test_color.mat").read_bytes() == _mat_bytes(tmp_path / "b", records)


def _mat_bytes(root: Path, records: list[FaceRecord]) -> bytes:
    images = {r.sample_id: _face(r.split, int(r.sample_id[-4:]))[1] for r in records}
    write_cofw(records, root, images=images, version="5")
    return (root / "COFW_test_color.mat").read_bytes()


def test_v5_file_holds_the_public_variables_one_based(tmp_path: Path) -> None:
    records, images = _dataset(tmp_path, "5")
    mat = scipy.io.loadmat(str(tmp_path / "COFW_train_color.mat"))
    assert mat["phisTr"].shape == (3, 87) and mat["bboxesTr"].shape == (3, 4) and mat["IsTr"].shape == (3, 1)
    first = records[0]
    np.testing.assert_array_equal(mat["phisTr"][0, :29], first.landmarks[:, 0] + 1)
    np.testing.assert_array_equal(mat["phisTr"][0, 58:], ~first.visible)
    np.testing.assert_array_equal(mat["bboxesTr"][0], [first.bbox[0] + 1, first.bbox[1] + 1, 30.5, 33.25])
    np.testing.assert_array_equal(mat["IsTr"][0, 0], images[first.sample_id][..., ::-1])  # RGB, as MATLAB
    assert mat["IsTr"][1, 0].ndim == 2


def test_v73_file_is_stored_as_matlab_does(tmp_path: Path) -> None:
    _, images = _dataset(tmp_path, "7.3")
    path = tmp_path / "COFW_test_color.mat"
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file" and h5py.is_hdf5(path)
    with h5py.File(path, "r") as f:
        assert f["phisT"].shape == (87, 3) and f["bboxesT"].shape == (4, 3) and f["IsT"].shape == (1, 3)
        assert f["IsT"].attrs["MATLAB_class"] == b"cell" and f["phisT"].attrs["MATLAB_class"] == b"double"
        colour = f[f["IsT"][0, 0]][()]
        height, width = images["test/0000"].shape[:2]
        assert colour.shape == (3, width, height)  # (C, W, H), as docs/models.md §1.2 says h5py shows it
        np.testing.assert_array_equal(np.transpose(colour), images["test/0000"][..., ::-1])


def test_mat_values_round_trip_in_both_versions(tmp_path: Path) -> None:
    values = {"cells": ["a/b.jpg", np.eye(2, 3)], "empty": [], "name": "x", "numbers": np.arange(6.0).reshape(2, 3)}
    for version in ("5", "7.3"):
        back = read_mat(write_mat(tmp_path / f"v{version}.mat", values, version), list(values))
        assert back["cells"][0] == "a/b.jpg" and back["name"] == "x" and back["empty"] == []
        np.testing.assert_array_equal(back["cells"][1], np.eye(2, 3))
        np.testing.assert_array_equal(back["numbers"], values["numbers"])


@pytest.mark.parametrize("version", ["5", "7.3"])
@pytest.mark.parametrize(
    ("change", "message", "check"),
    [
        (
            {"phisTr": None, "phis": np.zeros((3, 87))},
            r"expected variables IsTr, phisTr, bboxesTr; phisTr missing",
            None,
        ),
        ({"phisTr": np.zeros((3, 86))}, r"phisTr has shape \(3, 86\); expected N×87", None),
        ({"phisTr": "text"}, r"phisTr is str; expected a numeric N×87 matrix", None),
        ({"bboxesTr": np.ones((2, 4))}, r"IsTr has 3 images, phisTr 3 rows and bboxesTr 2 rows", None),
        ({"IsTr": np.zeros((3, 3))}, r"IsTr is not a cell array", None),
        ({"phisTr": "nan@1,4"}, r"phisTr\[1\]: column 4 is nan; expected finite numbers", "no_nan"),
        ({"phisTr": "0.5@2,60"}, r"phisTr\[2\]: occlusion flag of point 2 is 0.5; expected 0 or 1", None),
        ({"bboxesTr": "-3@0,2"}, r"bboxesTr\[0\]: box .* has width or height <= 0", "boxes_inside_image"),
        ({"IsTr": "float@1"}, r"IsTr\[1\] is float64 \(.*\); expected a uint8 image", "image_opens"),
    ],
)
def test_errors_name_file_variable_and_row(
    tmp_path: Path, version: str, change: dict, message: str, check: str | None
) -> None:
    _dataset(tmp_path, version)
    path = tmp_path / "COFW_train_color.mat"
    values = read_mat(path, ("IsTr", "phisTr", "bboxesTr"))
    for name, value in change.items():
        if isinstance(value, str) and "@" in value:  # "<value>@<row>,<column>": poke one entry
            what, where = value.split("@")
            if name == "IsTr":
                values[name][int(where)] = values[name][int(where)].astype(np.float64)
            else:
                row, column = (int(v) for v in where.split(","))
                values[name] = values[name].copy()
                values[name][row, column] = float(what)
        elif value is None:
            del values[name]
        else:
            values[name] = value
    write_mat(path, values, version)
    with pytest.raises(FormatError, match=message) as caught:
        read_cofw(tmp_path)
    assert str(caught.value).startswith(f"{path}: ") and caught.value.path == path
    if check:
        assert caught.value.check == check


def test_lenient_reading_skips_broken_faces_and_files(tmp_path: Path) -> None:
    _dataset(tmp_path, "7.3")
    path = tmp_path / "COFW_train_color.mat"
    values = read_mat(path, ("IsTr", "phisTr", "bboxesTr"))
    values["phisTr"][1, 0] = np.inf
    write_mat(path, values, "7.3")
    records, problems = read_dataset_leniently("cofw", tmp_path)
    assert [r.sample_id for r in records] == ["train/0000", "train/0002", "test/0000", "test/0001", "test/0002"]
    assert len(problems) == 1 and "phisTr[1]: column 0 is inf" in str(problems[0])
    (tmp_path / "COFW_test_color.mat").write_bytes(b"garbage")
    records, problems = read_dataset_leniently("cofw", tmp_path)
    assert len(records) == 2 and "not a readable MATLAB" in str(problems[1])


def test_a_wrong_folder_names_the_expected_files(tmp_path: Path) -> None:
    (tmp_path / "COFW_color.zip").write_bytes(b"")
    with pytest.raises(FormatError, match=r"expected COFW_train_color\.mat and/or .*found \['COFW_color\.zip'\]"):
        read_cofw(tmp_path)


def test_writer_refuses_records_out_of_row_order_and_writes_nothing(tmp_path: Path) -> None:
    (a, image_a), (b, image_b) = _face("train", 0), _face("train", 1)
    with pytest.raises(FormatError, match=r"is face 0 of split 'train', so it reads back as train/0000"):
        write_cofw([b, a], tmp_path, images={a.sample_id: image_a, b.sample_id: image_b})
    with pytest.raises(FormatError, match="no image given and none readable on disk"):
        write_cofw([a, b], tmp_path, images={a.sample_id: image_a})
    assert not any(tmp_path.iterdir())


def _cofw68(root: Path, version: str = "7.3") -> list[FaceRecord]:
    _dataset(root, version, train=0, test=3)
    records = [  # the same pictures as the 29-point faces
        replace(_face("test", i, layout="68")[0], width=original.width, height=original.height)
        for i, original in enumerate(read_cofw(root))
    ]
    write_cofw68(records, root)
    return records


def test_cofw68_round_trip_uses_the_test_images(tmp_path: Path) -> None:
    records = _cofw68(tmp_path)
    assert (tmp_path / "COFW68_Data/test_annotations/1_points.mat").is_file()
    raw = scipy.io.loadmat(str(tmp_path / "COFW68_Data/test_annotations/3_points.mat"))
    assert raw["Points"].shape == (68, 2) and raw["Occ"].shape == (68, 1)
    np.testing.assert_array_equal(raw["Points"], records[2].landmarks + 1)
    back = read_cofw68(tmp_path)
    _same(back, records)
    assert back[0].image_path == read_cofw(tmp_path)[0].image_path
    _same(read_dataset("cofw68", tmp_path), records)


def test_cofw68_errors_name_the_annotation_file(tmp_path: Path) -> None:
    _cofw68(tmp_path)
    broken = tmp_path / annotation_file(1)
    write_mat(broken, {"Points": np.zeros((29, 2)), "Occ": np.zeros((68, 1))})
    with pytest.raises(FormatError, match=r"2_points\.mat: Points has shape \(29, 2\); expected 68×2"):
        read_cofw68(tmp_path)
    broken.unlink()
    with pytest.raises(FormatError, match=r"2_points\.mat: does not exist"):
        read_cofw68(tmp_path)
    records, problems = read_dataset_leniently("cofw68", tmp_path)
    assert [r.sample_id for r in records] == ["test/0000", "test/0002"] and len(problems) == 1
    write_mat(tmp_path / COFW68_BOXES, {"bboxes": np.ones((2, 4))})
    with pytest.raises(FormatError, match=r"cofw68_test_bboxes\.mat: bboxes has 2 rows; expected one per image"):
        read_cofw68(tmp_path)
