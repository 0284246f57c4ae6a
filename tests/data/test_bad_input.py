"""The bad-input catalogue: every kind of broken dataset a user can hand us, and the error they get.

One table, CATALOGUE. Each entry writes a fresh tiny dataset with the project's own writers, breaks it one way,
and names the fragments the error must carry: the file, the line or field, and what was expected. The layer says
who must catch it:
- "reader": the strict reader raises a FormatError/ValueError. `data ingest`, the pipeline's lenient step, either
  refuses the whole dataset (nothing of it can be read) with that message, no traceback and no file in its
  workdir, or ingests the rest and lists the broken file, which `data validate` then fails on;
- "validate": the reader accepts the files (they parse), `data ingest` writes a manifest, and validation fails with
  the named check and the file, through `validate_manifest` and `data validate`;
- "validate_after": like "validate", but the break happens after a clean ingest (files or manifest edited later);
- "manifest": the manifest file itself is broken; `read_manifest` raises ManifestError and `data validate` says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from landmarkflow.cli import app
from landmarkflow.data.formats import aflw, cofw, w300, wflw
from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.matlab import read_mat, save_mat_v5, write_mat
from landmarkflow.data.formats.readers import READERS, read_dataset, read_dataset_leniently
from landmarkflow.data.manifest import FaceRecord, ManifestError, read_manifest, write_manifest
from landmarkflow.data.validation.run import validate_manifest
from landmarkflow.geometry import landmark_box

SIZE = (48, 40)  # width, height of every fixture image
AFLW_TRAIN = 2  # the real split takes 20000 train faces; the tiny fixture has 3 faces


def _image(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A distinct random picture per seed: identical bytes in two splits would be a leak of their own."""
    return np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)


def _points(seed: int, count: int) -> np.ndarray:
    """Points on a 1/256 grid (exact through the 1-based shifts) well inside the image."""
    return np.round(np.random.default_rng(seed).uniform(4, 35, size=(count, 2)) * 256) / 256


def _record(
    sample_id: str,
    dataset: str,
    split: str,
    image_path: str,
    layout: str,
    seed: int,
    subsets: tuple[str, ...] = (),
    hidden: int = 0,
) -> FaceRecord:
    """A face of `layout` whose first `hidden` points are not visible."""
    points = _points(seed, {"68": 68, "98": 98, "29": 29, "19": 19}[layout])
    return FaceRecord(
        sample_id=sample_id,
        dataset=dataset,
        split=split,
        image_path=image_path,
        width=SIZE[0],
        height=SIZE[1],
        bbox=landmark_box(points) + np.array([-1.0, -1.0, 1.0, 1.0]),
        landmarks=points,
        visible=np.arange(len(points)) >= hidden,
        layout=layout,
        subsets=subsets,
    )


# ------------------------------------------------------------------------------------------------ fixtures


def _write_300w(root: Path) -> None:
    """afw/face_0, afw/face_1 (train) and ibug/face_2 (test), with .pts and box files."""
    places = [("afw", "train", ()), ("afw", "train", ()), ("ibug", "test", ("challenging", "full"))]
    records = [
        _record(f"{folder}/face_{i}", "300w", split, f"{folder}/face_{i}.jpg", "68", seed=i, subsets=subsets)
        for i, (folder, split, subsets) in enumerate(places)
    ]
    w300.write_300w(records, root, images={r.sample_id: _image(i) for i, r in enumerate(records)})


WFLW_IMAGES = ("0--Parade/a.jpg", "0--Parade/b.jpg", "1--Handshaking/c.jpg")


def _write_wflw(root: Path) -> None:
    """Two train faces (lines 1, 2 of the train file) and one test face (line 1 of the test file)."""
    records = [
        _record(f"{name.removesuffix('.jpg')}#0", "wflw", split, f"WFLW_images/{name}", "98", seed=10 + i)
        for i, (name, split) in enumerate(zip(WFLW_IMAGES, ("train", "train", "test"), strict=True))
    ]
    wflw.write_wflw(records, root, images={r.sample_id: _image(10 + i) for i, r in enumerate(records)})


def _write_cofw(root: Path) -> None:
    """COFW_train_color.mat with rows 0, 1 and COFW_test_color.mat with row 0, as MATLAB v7.3 (HDF5)."""
    ids = [("train", 0), ("train", 1), ("test", 0)]
    records = [
        _record(cofw.sample_id(s, i), "cofw", s, cofw.image_path(s, i), "29", seed=20 + n, hidden=3)
        for n, (s, i) in enumerate(ids)
    ]
    cofw.write_cofw(records, root, images={r.sample_id: _image(20 + n) for n, r in enumerate(records)})


def _write_aflw(root: Path) -> None:
    """Rows 0, 1 (train) and 2 (test, frontal: every point visible and inside the box)."""
    records = [
        _record(
            aflw.sample_id(i),
            "aflw",
            "test" if i == 2 else "train",
            f"{aflw.IMAGE_DIR}/0/im{i}.jpg",
            "19",
            30 + i,
            subsets=(aflw.FRONTAL,) if i == 2 else (),
        )
        for i in range(3)
    ]
    aflw.write_aflw(
        records, root, images={r.sample_id: _image(30 + i) for i, r in enumerate(records)}, train_faces=AFLW_TRAIN
    )


WRITERS: dict[str, Callable[[Path], None]] = {
    "300w": _write_300w,
    "wflw": _write_wflw,
    "cofw": _write_cofw,
    "aflw": _write_aflw,
}


def _read_small_aflw(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
    records, report = aflw.read_aflw_with_report(root, strict=strict, train_faces=AFLW_TRAIN)
    return records, report.problems


@pytest.fixture(autouse=True)
def small_aflw_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest reads AFLW with the standard 20000-face split; the 3-face fixture needs a 2-face one."""
    monkeypatch.setitem(READERS, "aflw", _read_small_aflw)


# ------------------------------------------------------------------------------------------------ breakers


def _edit_lines(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    path.write_text("".join(f"{line}\n" for line in edit(path.read_text().splitlines())))


def _set_line(path: Path, number: int, text: str) -> None:
    def edit(lines: list[str]) -> list[str]:
        lines[number - 1] = text
        return lines

    _edit_lines(path, edit)


def _edit_wflw_field(split: str, number: int, index: int, value: str) -> Callable[[Path, Path], None]:
    """Set field `index` (0-based) of line `number` of a split's annotation file."""

    def breaks(root: Path, manifest: Path) -> None:
        def edit(lines: list[str]) -> list[str]:
            fields = lines[number - 1].split()
            fields[index] = value
            lines[number - 1] = " ".join(fields)
            return lines

        _edit_lines(root / wflw.annotation_file(split), edit)

    return breaks


def _edit_mat(name: str, variables: tuple[str, ...], edit: Callable[[dict], dict], version: str) -> Callable:
    """Read a .mat file's variables, change them, write them back in the same MATLAB version."""

    def breaks(root: Path, manifest: Path) -> None:
        values = read_mat(root / name, variables)
        write_mat(root / name, edit(values), version)

    return breaks


COFW_TRAIN = ("IsTr", "phisTr", "bboxesTr")
COFW_TEST = ("IsT", "phisT", "bboxesT")


def _cofw_train(edit: Callable[[dict], dict]) -> Callable:
    return _edit_mat("COFW_train_color.mat", COFW_TRAIN, edit, "7.3")


def _cofw_test(edit: Callable[[dict], dict]) -> Callable:
    return _edit_mat("COFW_test_color.mat", COFW_TEST, edit, "7.3")


def _aflw_mat(edit: Callable[[dict], dict]) -> Callable:
    return _edit_mat(aflw.MAT_FILE, aflw.VARIABLES, edit, "5")


def _set_cell(variable: str, row: int, column: int, value: float) -> Callable[[dict], dict]:
    def edit(values: dict) -> dict:
        values[variable] = values[variable].copy()
        values[variable][row, column] = value
        return values

    return edit


def _rename(old: str, new: str) -> Callable[[dict], dict]:
    def edit(values: dict) -> dict:
        values[new] = values.pop(old)
        return values

    return edit


def _swap_box_x(variable: str, row: int, a: int, b: int) -> Callable[[dict], dict]:
    def edit(values: dict) -> dict:
        boxes = values[variable].copy()
        boxes[row, [a, b]] = boxes[row, [b, a]]
        values[variable] = boxes
        return values

    return edit


def _garbage(relative: str) -> Callable[[Path, Path], None]:
    def breaks(root: Path, manifest: Path) -> None:
        (root / relative).write_bytes(b"this is not an image\n" * 20)

    return breaks


def _delete(relative: str) -> Callable[[Path, Path], None]:
    def breaks(root: Path, manifest: Path) -> None:
        (root / relative).unlink()

    return breaks


def _pts_truncated(root: Path, manifest: Path) -> None:
    _edit_lines(root / "afw/face_1.pts", lambda lines: lines[:20])


def _pts_67_points(root: Path, manifest: Path) -> None:
    w300.write_pts(root / "afw/face_0.pts", _points(0, 67))


def _pts_empty(root: Path, manifest: Path) -> None:
    (root / "ibug/face_2.pts").write_text("")


def _pts_far_outside(root: Path, manifest: Path) -> None:
    points = w300.read_pts(root / "afw/face_0.pts")
    points[7] = (-500.0, 9000.0)
    w300.write_pts(root / "afw/face_0.pts", points)


def _300w_second_image_same_stem(root: Path, manifest: Path) -> None:
    shutil.copyfile(root / "afw/face_0.jpg", root / "afw/face_0.png")


def _300w_box_reversed(root: Path, manifest: Path) -> None:
    path = root / w300.FOLDERS_BY_PATH["afw"].box_file
    boxes = w300.read_box_file(path)
    x1, y1, x2, y2 = boxes["face_1.jpg"].ground_truth
    boxes["face_1.jpg"] = w300.FaceBoxes(np.array([x2, y1, x1, y2]), boxes["face_1.jpg"].detector)
    w300.write_box_file(path, boxes)


def _300w_box_variable_renamed(root: Path, manifest: Path) -> None:
    save_mat_v5(root / w300.FOLDERS_BY_PATH["afw"].box_file, {"boxes": np.zeros((1, 4))})


def _300w_unknown_folders(root: Path, manifest: Path) -> None:
    (root / "afw").rename(root / "faces")
    shutil.rmtree(root / "ibug")


def _300w_same_picture_in_train_and_test(root: Path, manifest: Path) -> None:
    shutil.copyfile(root / "afw/face_0.jpg", root / "ibug/face_2.jpg")


def _wflw_206_fields(root: Path, manifest: Path) -> None:
    _edit_lines(root / wflw.annotation_file("train"), lambda lines: [lines[0], " ".join(lines[1].split()[1:])])


def _wflw_empty_file(root: Path, manifest: Path) -> None:
    (root / wflw.annotation_file("train")).write_text("\n")


def _wflw_binary_file(root: Path, manifest: Path) -> None:
    (root / wflw.annotation_file("test")).write_bytes(b"\xff\xd8\xff\xe0 a JPEG saved under the wrong name")


def _wflw_bigger_image(root: Path, manifest: Path) -> None:
    import cv2

    assert cv2.imwrite(str(root / "WFLW_images/0--Parade/b.jpg"), _image(99, (60, 40)))


def _remove_root(root: Path, manifest: Path) -> None:
    shutil.rmtree(root)


def _cofw_drop_box_row(values: dict) -> dict:
    values["bboxesTr"] = values["bboxesTr"][:1]
    return values


def _aflw_ra_repeats(values: dict) -> dict:
    values["ra"] = np.array([[1.0, 1.0, 3.0]])
    return values


def _aflw_name_escapes(values: dict) -> dict:
    values["nameList"][2] = "../../../../etc/passwd.jpg"
    return values


def _edit_manifest(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path, Path], None]:
    def breaks(root: Path, manifest: Path) -> None:
        write_manifest(edit(read_manifest(manifest)), manifest)

    return breaks


def _set_value(row: int, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.at[row, column] = value
        return frame

    return edit


def _manifest_twice(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[:1]], ignore_index=True)


def _manifest_not_parquet(root: Path, manifest: Path) -> None:
    manifest.write_text("sample_id,image_path\nface,a.jpg\n")


def _manifest_without_visible(root: Path, manifest: Path) -> None:
    read_manifest(manifest).drop(columns=["visible"]).to_parquet(manifest)


def _manifest_gone(root: Path, manifest: Path) -> None:
    manifest.unlink()


# ------------------------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Case:
    """One kind of broken input: the fixture it breaks, how, who must catch it, and what the message says."""

    kind: str
    dataset: str
    layer: str
    breaks: Callable[[Path, Path], None]
    expected: tuple[str, ...]
    check: str | None = None
    ingest_as: str | None = None


TRAIN_TXT = "list_98pt_rect_attr_train.txt"
TEST_TXT = "list_98pt_rect_attr_test.txt"
AFLW_MAT = aflw.MAT_FILE

CATALOGUE: list[Case] = [
    # ---- 300W: .pts files, images, box files, folders
    Case(
        "pts truncated",
        "300w",
        "reader",
        _pts_truncated,
        ("afw/face_1.pts:20:", "truncated: n_points (line 2) says 68 but the file ends after 17"),
    ),
    Case(
        "pts wrong point count",
        "300w",
        "reader",
        _pts_67_points,
        ("afw/face_0.pts", "holds 67 points; 300W's layout 68 expects 68"),
    ),
    Case(
        "pts non-numeric field",
        "300w",
        "reader",
        lambda root, m: _set_line(root / "afw/face_0.pts", 10, "12.5 abc"),
        ("afw/face_0.pts:10:", "non-numeric coordinate in '12.5 abc'; expected two numbers 'x y'"),
    ),
    Case(
        "pts NaN coordinate",
        "300w",
        "reader",
        lambda root, m: _set_line(root / "ibug/face_2.pts", 5, "nan 3.0"),
        ("ibug/face_2.pts:5:", "coordinate is not finite in 'nan 3.0'; expected finite numbers"),
    ),
    Case("pts empty file", "300w", "reader", _pts_empty, ("ibug/face_2.pts:1:", "truncated: no '{'")),
    Case(
        "300W unreadable image",
        "300w",
        "reader",
        _garbage("afw/face_1.jpg"),
        ("afw/face_1.jpg", "cannot read this image (expected a .jpg or .png file)"),
    ),
    Case(
        "300W duplicate sample (two images, one .pts)",
        "300w",
        "reader",
        _300w_second_image_same_stem,
        ("afw/face_0.png", "two images share the stem 'face_0' (face_0.jpg); expected one image per .pts"),
    ),
    Case(
        "300W box .mat with x2 < x1",
        "300w",
        "reader",
        _300w_box_reversed,
        ("bounding_boxes_afw.mat", "face_1.jpg", "bb_ground_truth", "expected x1 < x2 and y1 < y2"),
    ),
    Case(
        "300W box .mat unreadable",
        "300w",
        "reader",
        _garbage(w300.FOLDERS_BY_PATH["afw"].box_file),
        ("bounding_boxes_afw.mat", "not a readable MATLAB v5 box file"),
    ),
    Case(
        "300W box .mat with the wrong variable",
        "300w",
        "reader",
        _300w_box_variable_renamed,
        ("bounding_boxes_afw.mat", "expected a variable 'bounding_boxes', found ['boxes']"),
    ),
    Case(
        "unknown folder layout",
        "300w",
        "reader",
        _300w_unknown_folders,
        ("no 300W folders here; expected some of afw/", "found ['Bounding Boxes/', 'faces/']"),
    ),
    Case(
        "points far outside the image",
        "300w",
        "validate",
        _pts_far_outside,
        ("afw/face_0.jpg (sample afw/face_0)", "points span x -500.0..", "in a 48x40 image"),
        check="points_inside_image",
    ),
    Case(
        "train/test leak (same picture in two splits)",
        "300w",
        "validate",
        _300w_same_picture_in_train_and_test,
        ("ibug/face_2.jpg (sample ibug/face_2)", "same image content as afw/face_0.jpg (train)"),
        check="split_leak",
    ),
    # ---- WFLW: 207-field lines
    Case(
        "WFLW 206-field line",
        "wflw",
        "reader",
        _wflw_206_fields,
        (f"{TRAIN_TXT}:2:", "expected 207 whitespace-separated fields", "found 206"),
    ),
    Case(
        "WFLW non-numeric field",
        "wflw",
        "reader",
        _edit_wflw_field("train", 2, 2, "abc"),
        (f"{TRAIN_TXT}:2:", "field 3 (x1) is 'abc'; expected a number"),
    ),
    Case(
        "WFLW inf coordinate",
        "wflw",
        "reader",
        _edit_wflw_field("test", 1, 5, "inf"),
        (f"{TEST_TXT}:1:", "field 6 (y2) is 'inf'; expected a finite number"),
    ),
    Case(
        "WFLW box with x_max < x_min",
        "wflw",
        "reader",
        _edit_wflw_field("train", 1, 198, "0"),
        (f"{TRAIN_TXT}:1:", "has x_max <= x_min or y_max <= y_min; expected x_min < x_max and y_min < y_max"),
    ),
    Case(
        "WFLW attribute flag 2",
        "wflw",
        "reader",
        _edit_wflw_field("train", 2, 200, "2"),
        (f"{TRAIN_TXT}:2:", "attribute flag largepose is 2; expected 0 or 1"),
    ),
    Case(
        "WFLW image path escaping the root",
        "wflw",
        "reader",
        _edit_wflw_field("test", 1, 206, "../../outside.jpg"),
        (f"{TEST_TXT}:1:", "image path '../../outside.jpg' must be a relative path under WFLW_images/"),
    ),
    Case(
        "WFLW missing image",
        "wflw",
        "reader",
        _delete("WFLW_images/0--Parade/b.jpg"),
        (f"{TRAIN_TXT}:2:", "image WFLW_images/0--Parade/b.jpg does not exist"),
    ),
    Case(
        "WFLW unreadable image",
        "wflw",
        "reader",
        _garbage("WFLW_images/1--Handshaking/c.jpg"),
        (f"{TEST_TXT}:1:", "image WFLW_images/1--Handshaking/c.jpg: cannot read this image"),
    ),
    Case(
        "WFLW empty annotation file",
        "wflw",
        "reader",
        _wflw_empty_file,
        (TRAIN_TXT, "holds no annotation line; expected one 207-field line per face"),
    ),
    Case(
        "WFLW annotation file that is not text",
        "wflw",
        "reader",
        _wflw_binary_file,
        (TEST_TXT, "not a text annotation file"),
    ),
    Case(
        "huge coordinate (WFLW)",
        "wflw",
        "validate",
        _edit_wflw_field("test", 1, 0, "1e9"),
        ("WFLW_images/1--Handshaking/c.jpg (sample 1--Handshaking/c#0)", "points span x", "in a 48x40 image"),
        check="points_inside_image",
    ),
    Case(
        "image size differs from the manifest (WFLW image replaced)",
        "wflw",
        "validate_after",
        _wflw_bigger_image,
        ("WFLW_images/0--Parade/b.jpg (sample 0--Parade/b#0)", "60x40 on disk, manifest says 48x40"),
        check="image_size",
    ),
    Case(
        "unknown dataset name",
        "wflw",
        "reader",
        lambda root, m: None,
        ("unknown dataset 'wflw98': expected one of 300w, aflw, cofw",),
        ingest_as="wflw98",
    ),
    Case(
        "missing dataset folder",
        "wflw",
        "reader",
        _remove_root,
        ("dataset folder for 'wflw' does not exist",),
    ),
    # ---- COFW: .mat v7.3 variables
    Case(
        "COFW wrong .mat variable names",
        "cofw",
        "reader",
        _cofw_train(_rename("phisTr", "phis")),
        ("COFW_train_color.mat", "expected variables IsTr, phisTr, bboxesTr; phisTr missing", "'phis'"),
    ),
    Case(
        "COFW occlusion flag not 0/1",
        "cofw",
        "reader",
        _cofw_train(_set_cell("phisTr", 1, 58 + 3, 2.0)),
        ("COFW_train_color.mat", "phisTr[1]: occlusion flag of point 3 is 2; expected 0 or 1"),
    ),
    Case(
        "COFW NaN coordinate",
        "cofw",
        "reader",
        _cofw_test(_set_cell("phisT", 0, 4, np.nan)),
        ("COFW_test_color.mat", "phisT[0]: column 4 is nan; expected finite numbers"),
    ),
    Case(
        "COFW box of width 0",
        "cofw",
        "reader",
        _cofw_test(_set_cell("bboxesT", 0, 2, 0.0)),
        ("COFW_test_color.mat", "bboxesT[0]: box", "expected [x y w h] with w, h > 0"),
    ),
    Case(
        "COFW row counts differ",
        "cofw",
        "reader",
        _cofw_train(_cofw_drop_box_row),
        ("COFW_train_color.mat", "IsTr has 2 images, phisTr 2 rows and bboxesTr 1 rows; expected one row per image"),
    ),
    Case(
        "unreadable image (COFW export replaced)",
        "cofw",
        "validate_after",
        _garbage("images/train/0001.png"),
        ("images/train/0001.png (sample train/0001)", "OpenCV cannot decode it"),
        check="image_opens",
    ),
    # ---- AFLW: AFLWinfo_release.mat
    Case(
        "AFLW wrong .mat variable names",
        "aflw",
        "reader",
        _aflw_mat(_rename("mask_new", "mask")),
        (AFLW_MAT, "expected variables nameList, data, mask_new, bbox, ra; mask_new missing"),
    ),
    Case(
        "AFLW box with x2 < x1",
        "aflw",
        "reader",
        _aflw_mat(_swap_box_x("bbox", 1, 0, 1)),
        (AFLW_MAT, "bbox[1] is [", "expected [x1 x2 y1 y2] with x1 < x2 and y1 < y2"),
    ),
    Case(
        "AFLW path escaping the root",
        "aflw",
        "reader",
        _aflw_mat(_aflw_name_escapes),
        (AFLW_MAT, "nameList[2] is '../../../../etc/passwd.jpg'; expected a relative path that stays inside"),
    ),
    Case(
        "AFLW missing image",
        "aflw",
        "reader",
        _delete(f"{aflw.IMAGE_DIR}/0/im0.jpg"),
        (AFLW_MAT, f"nameList[0]: image {aflw.IMAGE_DIR}/0/im0.jpg does not exist"),
    ),
    Case(
        "AFLW visibility flag not 0/1",
        "aflw",
        "reader",
        _aflw_mat(_set_cell("mask_new", 0, 4, 2.0)),
        (AFLW_MAT, "mask_new[0]: point 4 is 2; expected 0 or 1"),
    ),
    Case(
        "AFLW ra not a permutation",
        "aflw",
        "reader",
        _aflw_mat(_aflw_ra_repeats),
        (AFLW_MAT, "ra is not a permutation of 1..3"),
    ),
    Case(
        "image size differs from the manifest (manifest width edited)",
        "aflw",
        "validate_after",
        _edit_manifest(_set_value(1, "width", 55)),
        (f"{aflw.IMAGE_DIR}/0/im1.jpg (sample 00001)", "48x40 on disk, manifest says 55x40"),
        check="image_size",
    ),
    # ---- the manifest, edited or broken after ingest
    Case(
        "duplicate sample id",
        "300w",
        "validate_after",
        _edit_manifest(_manifest_twice),
        ("afw/face_0.jpg (sample afw/face_0)", "sample id used 2 times"),
        check="unique_ids",
    ),
    Case(
        "manifest path escaping the root",
        "300w",
        "validate_after",
        _edit_manifest(_set_value(2, "image_path", "../ibug/face_2.jpg")),
        ("../ibug/face_2.jpg (sample ibug/face_2)", "absolute or escapes the dataset root"),
        check="relative_path",
    ),
    Case(
        "unknown layout in the manifest",
        "300w",
        "validate_after",
        _edit_manifest(_set_value(0, "layout", "71")),
        ("afw/face_0.jpg (sample afw/face_0)", "layout '71'"),
        check="known_layout",
    ),
    Case(
        "image deleted after ingest",
        "300w",
        "validate_after",
        _delete("afw/face_1.jpg"),
        ("afw/face_1.jpg (sample afw/face_1)", "no file"),
        check="image_exists",
    ),
    Case("manifest missing", "300w", "manifest", _manifest_gone, ("manifest.parquet: no such manifest file",)),
    Case(
        "manifest not Parquet",
        "300w",
        "manifest",
        _manifest_not_parquet,
        ("manifest.parquet: not a readable Parquet manifest",),
    ),
    Case(
        "manifest missing a column",
        "300w",
        "manifest",
        _manifest_without_visible,
        ("manifest.parquet: missing columns ['visible']",),
    ),
]


def _ids(cases: list[Case]) -> list[str]:
    return [case.kind for case in cases]


def _layer(*layers: str) -> list[Case]:
    return [case for case in CATALOGUE if case.layer in layers]


# ------------------------------------------------------------------------------------------------ assertions


def _squash(text: str) -> str:
    """Rich wraps console lines (inside words, for long paths) and table cells (between │ borders), so compare
    text without whitespace or borders: the examples are the table's last column, so a cell's lines join up."""
    return "".join(text.replace("│", " ").split())


def _says(text: str, expected: tuple[str, ...]) -> None:
    for fragment in expected:
        assert _squash(fragment) in _squash(text), f"{fragment!r} not in:\n{text}"


def _cli(*args: str | Path) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def _failed_cleanly(result: object, expected: tuple[str, ...]) -> None:
    """Non-zero exit through typer.Exit (any other exception is a traceback for the user), message shown."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert "Traceback" not in result.output
    _says(result.output, expected)


def _ingest(case: Case, root: Path, manifest: Path) -> object:
    dataset = case.ingest_as or case.dataset
    return _cli("data", "ingest", "--dataset", dataset, "--root", root, "--workdir", manifest.parent)


def _validate(manifest: Path) -> object:
    return _cli("data", "validate", "--workdir", manifest.parent)


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    """The dataset root and the manifest that ingest writes into its workdir, in separate folders so that the
    workdir starts empty."""
    return tmp_path / "data", tmp_path / "out" / "manifest.parquet"


def test_the_catalogue_covers_every_format_and_layer() -> None:
    assert len(CATALOGUE) >= 18
    assert {case.dataset for case in CATALOGUE} == set(WRITERS)
    assert {case.layer for case in CATALOGUE} == {"reader", "validate", "validate_after", "manifest"}
    assert len({case.kind for case in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("dataset", sorted(WRITERS))
def test_every_fixture_is_clean_before_it_is_broken(dataset: str, places: tuple[Path, Path]) -> None:
    root, manifest = places
    WRITERS[dataset](root)
    assert _ingest(Case("clean", dataset, "reader", _remove_root, ()), root, manifest).exit_code == 0
    result = validate_manifest(read_manifest(manifest), root)
    assert result.success, result.summary()


@pytest.mark.parametrize("case", _layer("reader"), ids=_ids(_layer("reader")))
def test_reader_rejects_naming_file_place_and_expectation(case: Case, places: tuple[Path, Path]) -> None:
    root, manifest = places
    WRITERS[case.dataset](root)
    case.breaks(root, manifest)
    with pytest.raises((ValueError, OSError)) as raised:  # FormatError and ManifestError are ValueErrors
        read_dataset(case.ingest_as or case.dataset, root)
    _says(str(raised.value), case.expected)

    ingested = _ingest(case, root, manifest)
    try:
        read_dataset_leniently(case.ingest_as or case.dataset, root)
    except (ValueError, OSError):  # nothing of the dataset is readable: no root, one .pts for two images, ...
        _failed_cleanly(ingested, case.expected)
        assert not manifest.parent.exists() or not any(manifest.parent.iterdir()), "ingest left a file behind"
        return
    assert ingested.exit_code == 0, ingested.output
    _says(ingested.output, case.expected)
    _failed_cleanly(_validate(manifest), case.expected[:1])


@pytest.mark.parametrize("case", _layer("validate", "validate_after"), ids=_ids(_layer("validate", "validate_after")))
def test_validation_names_check_and_file(case: Case, places: tuple[Path, Path]) -> None:
    root, manifest = places
    WRITERS[case.dataset](root)
    if case.layer == "validate":
        case.breaks(root, manifest)
    ingested = _ingest(case, root, manifest)
    assert ingested.exit_code == 0 and manifest.is_file(), ingested.output
    if case.layer == "validate_after":
        case.breaks(root, manifest)

    result = validate_manifest(read_manifest(manifest), root)
    assert [f.check for f in result.failures] == [case.check], result.summary()
    _says("\n".join(result.failures[0].examples), case.expected)

    _failed_cleanly(_validate(manifest), (case.check, case.expected[0]))


@pytest.mark.parametrize("case", _layer("manifest"), ids=_ids(_layer("manifest")))
def test_broken_manifest_is_named(case: Case, places: tuple[Path, Path]) -> None:
    root, manifest = places
    WRITERS[case.dataset](root)
    assert _ingest(case, root, manifest).exit_code == 0
    case.breaks(root, manifest)
    with pytest.raises(ManifestError) as raised:
        read_manifest(manifest)
    _says(str(raised.value), case.expected)
    _failed_cleanly(_validate(manifest), case.expected)


def test_ingest_onto_a_folder_fails_cleanly(places: tuple[Path, Path]) -> None:
    root, manifest = places
    _write_300w(root)
    manifest.mkdir(parents=True)
    expected = ("manifest.parquet: is a folder; expected a Parquet file path",)
    with pytest.raises(ManifestError) as raised:
        write_manifest(read_dataset("300w", root), manifest)
    _says(str(raised.value), expected)
    _failed_cleanly(_ingest(Case("out", "300w", "reader", _remove_root, ()), root, manifest), expected)
    assert list(manifest.parent.iterdir()) == [manifest] and not any(manifest.iterdir())
