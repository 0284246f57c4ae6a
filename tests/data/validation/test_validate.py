"""The data suite on small manifests with real image files: clean data passes, each corruption fails its check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from landmarkflow.data.manifest import COLUMNS, FaceRecord, to_frame
from landmarkflow.data.validation.rendering import print_summary
from landmarkflow.data.validation.result import MANIFEST_CHECKS, DataValidationError, ValidationResult
from landmarkflow.data.validation.run import require_valid, validate_manifest
from landmarkflow.geometry import landmark_box

WIDTH, HEIGHT = 64, 48
SPLITS = ("train", "train", "train", "train", "test", "test")


def _write_image(path: Path, width: int = WIDTH, height: int = HEIGHT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = sum(path.name.encode())  # distinct pictures: identical bytes across splits are a leak
    image = np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """Six faces, one per image, all inside their 64x48 images; one PNG among the JPEGs."""
    root = tmp_path / "faces"
    rng = np.random.default_rng(7)
    records = []
    for i, split in enumerate(SPLITS):
        rel = f"{split}/face_{i}.{'png' if i == 3 else 'jpg'}"
        _write_image(root / rel)
        points = rng.uniform([2, 2], [WIDTH - 3, HEIGHT - 3], size=(68, 2))
        records.append(
            FaceRecord(f"s{i}", "synthetic", split, rel, WIDTH, HEIGHT, landmark_box(points), points, np.ones(68), "68")
        )
    return to_frame(records), root


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> None:
    frame[column] = frame[column].astype(object)
    frame.at[row, column] = value


def _67_points(frame: pd.DataFrame, root: Path) -> str:
    _set(frame, 1, "landmarks", frame.at[1, "landmarks"][:67])
    _set(frame, 1, "visible", frame.at[1, "visible"][:67])
    return "train/face_1.jpg"


def _short_visibility(frame: pd.DataFrame, root: Path) -> str:
    _set(frame, 2, "visible", frame.at[2, "visible"][:60])
    return "train/face_2.jpg"


def _nan_landmark(frame: pd.DataFrame, root: Path) -> str:
    points = [list(p) for p in frame.at[4, "landmarks"]]
    points[10][1] = float("nan")
    _set(frame, 4, "landmarks", points)
    return "test/face_4.jpg"


def _point_outside(frame: pd.DataFrame, root: Path) -> str:
    points = [list(p) for p in frame.at[0, "landmarks"]]
    points[5][0] = WIDTH + 40.0
    _set(frame, 0, "landmarks", points)
    return "train/face_0.jpg"


def _garbage_image(frame: pd.DataFrame, root: Path) -> str:
    (root / "train/face_2.jpg").write_bytes(b"this is not a jpeg" * 50)
    return "train/face_2.jpg"


def _missing_image(frame: pd.DataFrame, root: Path) -> str:
    (root / "test/face_5.jpg").unlink()
    return "test/face_5.jpg"


def _wrong_size(frame: pd.DataFrame, root: Path) -> str:
    _write_image(root / "train/face_3.png", width=WIDTH + 10, height=HEIGHT)
    return "train/face_3.png"


def _train_image_in_test(frame: pd.DataFrame, root: Path) -> str:
    frame.at[5, "image_path"] = "train/face_1.jpg"
    return "train/face_1.jpg"


def _box_reversed(frame: pd.DataFrame, root: Path) -> str:
    x1, y1, x2, y2 = frame.at[2, "bbox"]
    _set(frame, 2, "bbox", [x2, y1, x1, y2])
    return "train/face_2.jpg"


def _duplicate_id(frame: pd.DataFrame, root: Path) -> str:
    frame.at[4, "sample_id"] = "s1"
    return "test/face_4.jpg"


def _unknown_layout(frame: pd.DataFrame, root: Path) -> str:
    frame.at[3, "layout"] = "71"
    return "train/face_3.png"


def _absolute_path(frame: pd.DataFrame, root: Path) -> str:
    frame.at[0, "image_path"] = str(root / "train/face_0.jpg")
    return str(root / "train/face_0.jpg")


def _wflw_face_with_68_points(frame: pd.DataFrame, root: Path) -> str:
    _set(frame, 2, "dataset", "wflw")
    return "train/face_2.jpg"


def _unknown_subset(frame: pd.DataFrame, root: Path) -> str:
    _set(frame, 4, "subsets", ["common", "sunglasses"])
    return "test/face_4.jpg"


def _face_annotated_twice(frame: pd.DataFrame, root: Path) -> str:
    duplicate = frame.iloc[[1]].copy()
    duplicate["sample_id"] = "s1-again"
    frame.loc[len(frame)] = duplicate.iloc[0]
    return "train/face_1.jpg"


def _nothing_visible(frame: pd.DataFrame, root: Path) -> str:
    _set(frame, 0, "visible", np.zeros(68, dtype=bool))
    return "train/face_0.jpg"


CORRUPTIONS: list[tuple[str, Callable[[pd.DataFrame, Path], str]]] = [
    ("point_count", _67_points),
    ("point_count", _short_visibility),
    ("no_nan", _nan_landmark),
    ("points_inside_image", _point_outside),
    ("image_opens", _garbage_image),
    ("image_exists", _missing_image),
    ("image_size", _wrong_size),
    ("split_leak", _train_image_in_test),
    ("boxes_inside_image", _box_reversed),
    ("unique_ids", _duplicate_id),
    ("known_layout", _unknown_layout),
    ("relative_path", _absolute_path),
    ("dataset_layout", _wflw_face_with_68_points),
    ("known_subsets", _unknown_subset),
    ("visibility", _nothing_visible),
    ("duplicate_faces", _face_annotated_twice),
]


def test_clean_manifest_passes_and_writes_both_reports(dataset: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    frame, root = dataset
    result = validate_manifest(frame, root, tmp_path / "report")
    assert result.success, result.summary()
    assert result.failures == []
    assert result.checks == list(MANIFEST_CHECKS)
    assert (result.num_faces, result.num_images) == (6, 6)
    assert result.summary().startswith(
        f"Data validation passed: {len(MANIFEST_CHECKS)} checks over 6 faces in 6 images"
    )
    assert result.report_path == tmp_path / "report" / "validation.html"
    page = result.report_path.read_text()
    assert "Data validation passed" in page and 'href="data_docs/index.html"' in page
    assert result.data_docs_path == tmp_path / "report" / "data_docs" / "index.html"
    assert "manifest_faces" in result.data_docs_path.read_text()
    assert require_valid(result) is result


@pytest.mark.parametrize(("check", "corrupt"), CORRUPTIONS, ids=[c.__name__.strip("_") for _, c in CORRUPTIONS])
def test_each_corruption_fails_exactly_its_check(
    dataset: tuple[pd.DataFrame, Path], tmp_path: Path, check: str, corrupt: Callable[[pd.DataFrame, Path], str]
) -> None:
    frame, root = dataset
    bad_file = corrupt(frame, root)
    result = validate_manifest(frame, root, tmp_path / "report")
    assert not result.success
    assert [f.check for f in result.failures] == [check], result.summary()
    summary = result.summary()
    assert f"{check} (" in summary and bad_file in summary
    assert any(bad_file in example for example in result.failures[0].examples)
    page = result.report_path.read_text()
    assert f'<tr id="{check}">' in page and bad_file in page
    with pytest.raises(DataValidationError, match=check):
        require_valid(result)


def test_messages_say_why(dataset: tuple[pd.DataFrame, Path]) -> None:
    frame, root = dataset
    _67_points(frame, root)
    _wrong_size(frame, root)
    _train_image_in_test(frame, root)
    result = validate_manifest(frame, root)
    assert result.report_path is None and result.data_docs_path is None
    examples = {f.check: f.examples for f in result.failures}
    assert examples["point_count"] == ["train/face_1.jpg (sample s1): 67 points, 67 visibility flags; layout 68 has 68"]
    assert examples["image_size"] == ["train/face_3.png (sample s3): 74x48 on disk, manifest says 64x48"]
    assert examples["split_leak"] == [
        "train/face_1.jpg (sample s1): image in splits test, train",
        "train/face_1.jpg (sample s5): image in splits test, train",
    ]


def test_broken_schema_skips_the_face_checks(dataset: tuple[pd.DataFrame, Path]) -> None:
    frame, root = dataset
    result = validate_manifest(frame.drop(columns=["visible"]).assign(extra=1), root)
    assert [f.check for f in result.failures] == ["schema"]
    assert result.failures[0].examples == ["missing column 'visible'", "unexpected column 'extra'"]
    assert result.checks == ["schema"] and "point_count" in result.skipped
    assert "not run because the schema is broken" in result.summary()


def test_empty_manifest_fails(tmp_path: Path) -> None:
    result = validate_manifest(pd.DataFrame(columns=list(COLUMNS)), tmp_path)
    assert [f.check for f in result.failures] == ["non_empty"]


def test_tolerance_admits_points_just_outside(dataset: tuple[pd.DataFrame, Path]) -> None:
    frame, root = dataset
    points = [list(p) for p in frame.at[0, "landmarks"]]
    points[0] = [-1.5, HEIGHT - 1 + 1.5]
    frame["landmarks"] = frame["landmarks"].astype(object)
    frame.at[0, "landmarks"] = points
    assert validate_manifest(frame, root, point_tolerance=2.0).success
    strict = validate_manifest(frame, root, point_tolerance=0.0)
    assert [f.check for f in strict.failures] == ["points_inside_image"]


def test_result_serialises_and_prints(dataset: tuple[pd.DataFrame, Path]) -> None:
    frame, root = dataset
    _missing_image(frame, root)
    result = validate_manifest(frame, root)
    loaded = json.loads(json.dumps(result.to_dict()))
    assert loaded["success"] is False
    assert loaded["failures"] == [
        {
            "check": "image_exists",
            "count": 1,
            "examples": [f"test/face_5.jpg (sample s5): no file {root}/test/face_5.jpg"],
        }
    ]
    console = Console(record=True, width=200)
    print_summary(result, console)
    text = console.export_text()
    assert "image_exists" in text and "FAIL" in text and "test/face_5.jpg" in text


def test_multi_face_images_are_read_once_and_not_a_leak(dataset: tuple[pd.DataFrame, Path]) -> None:
    frame, root = dataset
    frame.at[1, "image_path"] = "train/face_0.jpg"
    result = validate_manifest(frame, root)
    assert result.success, result.summary()
    assert (result.num_faces, result.num_images) == (6, 5)


def test_result_type_is_exported() -> None:
    assert ValidationResult.__name__ == "ValidationResult"


def test_same_picture_under_another_name_in_another_split_is_a_leak(dataset: tuple[pd.DataFrame, Path]) -> None:
    import shutil

    frame, root = dataset
    test_row = frame[frame["split"] == "test"].iloc[0]
    shutil.copyfile(root / test_row["image_path"], root / "train/renamed_copy.jpg")
    leaked = test_row.copy()
    leaked["sample_id"], leaked["split"], leaked["image_path"] = "leaked", "train", "train/renamed_copy.jpg"
    frame = pd.concat([frame, leaked.to_frame().T], ignore_index=True)
    result = validate_manifest(frame, root)
    assert [f.check for f in result.failures] == ["split_leak"]
    assert "renamed_copy.jpg" in result.summary() and "same image content as" in result.summary()


def _as_dataset(frame: pd.DataFrame, dataset: str, layout: str, points: int) -> pd.DataFrame:
    frame = frame.copy()
    rng = np.random.default_rng(3)
    frame["dataset"], frame["layout"] = dataset, layout
    frame["landmarks"] = [rng.uniform([10, 10], [40, 30], size=(points, 2)) for _ in range(len(frame))]
    frame["visible"] = [np.ones(points, dtype=bool) for _ in range(len(frame))]
    frame["bbox"] = [np.array([5.0, 5.0, 50.0, 40.0]) for _ in range(len(frame))]
    frame["subsets"] = [["frontal"] if split == "test" else [] for split in frame["split"]]
    return frame


def test_aflw_frontal_flags_must_match_visibility(dataset: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    frame, root = dataset
    aflw = _as_dataset(frame, "aflw", "19", 19)
    assert validate_manifest(aflw, root).success

    hidden = aflw["visible"][4].copy()
    hidden[3] = False
    _set(aflw, 4, "visible", hidden)  # still flagged frontal, but a point is hidden
    result = validate_manifest(aflw, root)
    assert [f.check for f in result.failures] == ["subset_flags"]
    assert "test/face_4.jpg" in result.failures[0].examples[0] and "'frontal' flag" in result.failures[0].examples[0]


def test_counts_unlike_the_published_release_are_warnings(dataset: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    frame, root = dataset
    wflw = _as_dataset(frame, "wflw", "98", 98)
    wflw["subsets"] = [["blur"] if split == "test" else [] for split in wflw["split"]]
    result = validate_manifest(wflw, root, tmp_path / "report")
    assert result.success, result.summary()
    assert result.warnings == [
        "wflw train: 4 faces, the published release has 7500 (fine for a sample or a subset; metrics are then "
        "not comparable with papers)",
        "wflw test: 2 faces, the published release has 2500 (fine for a sample or a subset; metrics are then "
        "not comparable with papers)",
    ]
    assert "warning: wflw train: 4 faces" in result.summary()
    assert "Warnings" in result.report_path.read_text()
    assert validate_manifest(frame, root).warnings == []  # synthetic data has no published size


def test_300w_private_faces_are_a_split_of_their_own(dataset: tuple[pd.DataFrame, Path]) -> None:
    frame, root = dataset
    w300 = frame.assign(dataset="300w")
    w300["subsets"] = [["common", "full"] if split == "test" else [] for split in w300["split"]]
    w300.at[5, "split"], w300.at[5, "subsets"] = "private", []
    result = validate_manifest(w300, root)
    assert result.success, result.summary()
    assert [w.split(",")[0] for w in result.warnings] == [
        "300w train: 4 faces",
        "300w test: 1 faces",
        "300w common: 1 faces",
        "300w challenging: 0 faces",
        "300w full: 1 faces",
        "300w private: 1 faces",
    ]


def test_aflw_faces_of_both_splits_in_one_image_are_its_protocol(dataset: tuple[pd.DataFrame, Path]) -> None:
    """AFLW splits per face: one file in two splits passes with a note; the same picture copied under another
    name into the other split is still a leak."""
    import shutil

    frame, root = dataset
    aflw = _as_dataset(frame, "aflw", "19", 19)
    aflw.at[4, "image_path"] = "train/face_0.jpg"  # a test face in a train face's picture
    result = validate_manifest(aflw, root)
    assert result.success, result.summary()
    assert "aflw: 1 images hold faces of more than one split" in result.warnings[-1]

    shutil.copyfile(root / "test/face_5.jpg", root / "train/renamed_copy.jpg")
    aflw.at[1, "image_path"] = "train/renamed_copy.jpg"
    result = validate_manifest(aflw, root)
    assert [f.check for f in result.failures] == ["split_leak"]
    assert result.failures[0].examples == [
        "train/renamed_copy.jpg (sample s1): same image content as test/face_5.jpg (test); split train",
        "test/face_5.jpg (sample s5): same image content as train/renamed_copy.jpg (train); split test",
    ]
