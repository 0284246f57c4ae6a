from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from landmarkflow.data.formats.aflw import (
    IMAGE_DIR,
    MAT_FILE,
    TRAIN_FACES,
    VARIABLES,
    read_aflw,
    read_aflw_with_report,
    write_aflw,
)
from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.matlab import read_mat, write_mat
from landmarkflow.data.formats.readers import read_dataset, read_dataset_leniently
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.validation.images import content_leaks, probe_images
from landmarkflow.data.validation.profiles import shared_image_notes
from landmarkflow.data.validation.table import split_leak_by_path

IMAGES = ["0/image00002.jpg", "2/image13018.jpg", "3/image40021.png"]
SIZES = {"0/image00002.jpg": (64, 60), "2/image13018.jpg": (50, 70), "3/image40021.png": (72, 66)}


def _face(index: int, split: str, frontal: bool, rng: np.random.Generator) -> FaceRecord:
    """A face on a 1/256 grid (exact through the 1-based shift); frontal test faces have all points inside."""
    name = IMAGES[index % len(IMAGES)]
    points = np.round(rng.uniform(10, 40, size=(19, 2)) * 256) / 256
    visible = np.ones(19, dtype=bool) if frontal else rng.random(19) > 0.2
    if not frontal and visible.all():
        visible[3] = False
    return FaceRecord(
        sample_id=f"{index:05d}",
        dataset="aflw",
        split=split,
        subsets=["frontal"] if frontal and split == "test" else [],
        image_path=f"aflw/data/flickr/{name}",
        width=SIZES[name][0],
        height=SIZES[name][1],
        bbox=np.array([8.5, 9.0, 44.25, 45.0]),
        landmarks=points,
        visible=visible,
        layout="19",
    )


def _dataset(root: Path, splits: str = "ttsstts") -> list[FaceRecord]:
    rng = np.random.default_rng(0)
    records = [_face(i, "train" if s == "t" else "test", frontal=i % 2 == 0, rng=rng) for i, s in enumerate(splits)]
    images = {r.sample_id: rng.integers(0, 256, (r.height, r.width, 3), dtype=np.uint8) for r in records}
    write_aflw(records, root, images=images, train_faces=splits.count("t"))
    return records


def _same(got: list[FaceRecord], want: list[FaceRecord]) -> None:
    assert [r.sample_id for r in got] == [r.sample_id for r in want]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(a.bbox, b.bbox)
        np.testing.assert_array_equal(a.visible, b.visible)
        assert (a.split, a.subsets, a.image_path, a.width, a.height, a.layout) == (
            b.split,
            b.subsets,
            b.image_path,
            b.width,
            b.height,
            b.layout,
        )


def test_round_trip_is_exact_with_split_and_frontal_subset(tmp_path: Path) -> None:
    records = _dataset(tmp_path)
    back, report = read_aflw_with_report(tmp_path, train_faces=4)
    _same(back, records)
    assert report.faces_per_split == {"train": 4, "test": 3} and report.faces_per_subset == {"frontal": 2}
    assert report.images == 3 and (tmp_path / "aflw/data/flickr/3/image40021.png").is_file()


def test_protocol_file_holds_san_variables_one_based(tmp_path: Path) -> None:
    records = _dataset(tmp_path)
    mat = scipy.io.loadmat(str(tmp_path / MAT_FILE))
    assert sorted(k for k in mat if not k.startswith("__")) == sorted(VARIABLES)
    assert mat["data"].shape == (7, 38) and mat["mask_new"].shape == (7, 19) and mat["bbox"].shape == (7, 4)
    np.testing.assert_array_equal(mat["data"][1, :19], records[1].landmarks[:, 0] + 1)
    np.testing.assert_array_equal(mat["bbox"][0], [9.5, 45.25, 10.0, 46.0])  # [x1 x2 y1 y2], 1-based
    np.testing.assert_array_equal(mat["ra"], [[1, 2, 5, 6, 3, 4, 7]])  # train rows first, 1-based
    assert str(mat["nameList"][2, 0][0]) == "3/image40021.png"


def test_the_standard_split_of_a_full_size_file_is_per_face_and_no_split_leak(tmp_path: Path) -> None:
    """24386 faces on 200 tiny pictures, written by write_aflw: the first 20000 of ra train, the other 4386 test.
    The split is per face, so every picture holds faces of both splits; that is AFLW's protocol, which both halves
    of the split_leak check (same file, same content) pass and validation only notes."""
    rng = np.random.default_rng(1)
    test_rows = set(rng.permutation(24386)[:4386].tolist())
    points = np.round(rng.uniform(4, 27, size=(24386, 19, 2)) * 256) / 256
    hidden, shown = np.ones(19, dtype=bool), np.ones(19, dtype=bool)
    hidden[0] = False  # even rows hide a point: never frontal
    records = [
        FaceRecord(
            f"{i:05d}", "aflw", "test" if i in test_rows else "train", f"{IMAGE_DIR}/0/image{i % 200:05d}.png", 32,
            32, np.array([2.0, 2.0, 29.0, 29.0]), points[i], shown if i % 2 else hidden, "19",
            ["frontal"] if i in test_rows and i % 2 else [],
        )
        for i in range(24386)
    ]  # fmt: skip
    pictures = rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
    write_aflw(records, tmp_path, images={r.sample_id: pictures[i % 200] for i, r in enumerate(records)})

    read = read_dataset("aflw", tmp_path)
    test = [r for r in read if r.split == "test"]
    assert len(read) == 24386 and {int(r.sample_id) for r in test} == test_rows
    frontal = [r.sample_id for r in test if "frontal" in r.subsets]
    assert frontal == [r.sample_id for r in test if int(r.sample_id) % 2]
    faces = pd.DataFrame([(r.dataset, r.split, r.image_path) for r in read], columns=["dataset", "split", "image_path"])
    assert faces.groupby("image_path")["split"].nunique().eq(2).all()
    probes = probe_images(tmp_path, faces["image_path"].tolist())
    assert not split_leak_by_path(faces).any() and content_leaks(faces, probes) == {}
    assert shared_image_notes(faces["dataset"], faces["split"], faces["image_path"]) == [
        "aflw: 200 images hold faces of more than one split; aflw's official split is per face, so that is its "
        "protocol, not a leak"
    ]
    as_wflw = faces.assign(dataset="wflw")  # a split per image: the same pictures are leaks
    assert split_leak_by_path(as_wflw).all() and len(content_leaks(as_wflw, probes)) == 24386


def _broken(tmp_path: Path, **changes: object) -> Path:
    _dataset(tmp_path)
    path = tmp_path / MAT_FILE
    values = read_mat(path, VARIABLES)
    for name, value in changes.items():
        if value is None:
            del values[name]
        elif callable(value):
            value(values)
        else:
            values[name] = value
    write_mat(path, values)
    return path


def _poke(name: str, row: int, column: int, value: float) -> Callable[[dict], None]:
    def edit(values: dict) -> None:
        values[name] = values[name].astype(np.float64)
        values[name][row, column] = value

    return edit


def _rename(values: dict) -> None:
    values["nameList"][4] = "../../etc/passwd.jpg"


def _missing(values: dict) -> None:
    values["nameList"][5] = "0/image99999.jpg"


@pytest.mark.parametrize(
    ("change", "message", "check"),
    [
        ({"mask_new": None}, r"expected variables nameList, data, mask_new, bbox, ra; mask_new missing", None),
        ({"data": np.zeros((7, 42))}, r"data has shape \(7, 42\); expected N×38", None),
        ({"bbox": np.zeros((6, 4))}, r"row counts differ .*'bbox': 6", None),
        ({"ra": np.array([[1.0, 2, 2, 4, 5, 6, 7]])}, r"ra is not a permutation of 1\.\.7", None),
        ({"d": _poke("data", 2, 20, np.nan)}, r"data\[2\]: column 20 is nan; expected finite", "no_nan"),
        ({"m": _poke("mask_new", 3, 5, 2.0)}, r"mask_new\[3\]: point 5 is 2; expected 0 or 1", None),
        (
            {"b": _poke("bbox", 1, 1, 0.0)},
            r"bbox\[1\] is .*expected \[x1 x2 y1 y2\] with x1 < x2",
            "boxes_inside_image",
        ),
        ({"n": _rename}, r"nameList\[4\] is '\.\./\.\./etc/passwd\.jpg'; expected a relative path", "relative_path"),
        ({"n": _missing}, r"nameList\[5\]: image aflw/data/flickr/0/image99999\.jpg does not exist", "image_exists"),
    ],
)
def test_errors_name_file_variable_and_row(tmp_path: Path, change: dict, message: str, check: str | None) -> None:
    path = _broken(tmp_path, **change)
    with pytest.raises(FormatError, match=message) as caught:
        read_aflw(tmp_path, train_faces=4)
    assert str(caught.value).startswith(f"{path}: ") and caught.value.path == path
    if check:
        assert caught.value.check == check


def test_too_few_faces_for_the_standard_split(tmp_path: Path) -> None:
    _dataset(tmp_path)
    with pytest.raises(FormatError, match=rf"holds 7 faces; the split takes the first {TRAIN_FACES} of ra"):
        read_aflw(tmp_path)


def test_lenient_reading_skips_broken_faces(tmp_path: Path) -> None:
    path = _broken(tmp_path, n=_missing)
    records, report = read_aflw_with_report(tmp_path, strict=False, train_faces=4)
    assert [r.sample_id for r in records] == ["00000", "00001", "00002", "00003", "00004", "00006"]
    assert [p.path for p in report.problems] == [path] and "1 faces or files not read" in report.summary()
    _, problems = read_dataset_leniently("aflw", tmp_path)  # the standard split needs 20000 train faces
    assert len(problems) == 1 and "the split takes the first 20000" in str(problems[0])


def test_a_wrong_folder_names_what_is_expected(tmp_path: Path) -> None:
    (tmp_path / "aflw-images-0.tar.gz").write_bytes(b"")
    with pytest.raises(FormatError, match=r"expected AFLWinfo_release\.mat and the images under aflw/data/flickr/"):
        read_aflw(tmp_path)


def test_writer_refuses_records_that_would_not_read_back_and_writes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    records = [_face(0, "train", False, rng), _face(1, "test", True, rng)]
    image = np.zeros((60, 64, 3), np.uint8)
    unflagged = [records[0], replace(records[1], subsets=[])]
    with pytest.raises(FormatError, match="'frontal' is derived"):
        write_aflw(unflagged, tmp_path, images={"00000": image}, train_faces=1)
    with pytest.raises(FormatError, match="sample 00001: no image given and none on disk"):
        write_aflw(records, tmp_path, images={"00000": image}, train_faces=1)
    with pytest.raises(FormatError, match=r"is face 0, so it reads back as 00000"):
        write_aflw(records[::-1], tmp_path, train_faces=1)
    assert not any(tmp_path.iterdir())
