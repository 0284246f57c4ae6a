"""The manifest flattened to one row per face, with the derived columns the GX suite expects on.

GX pandas expectations test columns, not nested arrays, so every per-face fact (point count, coordinate
range, box corners, whether another split shares the image) becomes a column first. Row i of the table is
row i of the manifest, which is how failing GX rows map back to files and sample ids.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from landmarkflow.data.manifest import ManifestError, check_relative_path
from landmarkflow.data.validation.profiles import (
    layout_fits,
    split_is_per_face,
    subset_flags_consistent,
    unknown_subsets,
)
from landmarkflow.layouts import LAYOUTS

FACE_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "image_path",
    "split",
    "layout",
    "width",
    "height",
    "path_is_relative",
    "n_points",
    "n_visible",
    "expected_points",
    "all_finite",
    "min_x",
    "max_x",
    "min_y",
    "max_y",
    "bbox_x1",
    "bbox_y1",
    "bbox_x2",
    "bbox_y2",
    "dataset",
    "layout_fits_dataset",
    "unknown_subsets",
    "visible_count",
    "subset_flags_consistent",
)
MALFORMED = -1  # n_points of landmarks that are not a K x 2 array of numbers


def face_table(frame: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """One row per manifest row; `x_limit`/`y_limit` are the largest coordinates allowed in that image."""
    rows = [_face_row(row) for row in frame.itertuples(index=False)]
    table = pd.DataFrame(rows, columns=list(FACE_COLUMNS))
    table["x_limit"] = table["width"].astype("float64") - 1 + tolerance
    table["y_limit"] = table["height"].astype("float64") - 1 + tolerance
    table["id_uses"] = table.groupby("sample_id")["sample_id"].transform("size")
    table["split_leak_by_path"] = split_leak_by_path(table)
    table["face_key"] = [
        _face_key(path, points) for path, points in zip(frame["image_path"], frame["landmarks"], strict=True)
    ]
    # Distinct ids per face: the same row twice is a repeated id, which is unique_ids' failure, not this one's.
    table["face_uses"] = table.groupby("face_key")["sample_id"].transform("nunique")
    return table


def split_leak_by_path(faces: pd.DataFrame) -> pd.Series:
    """Per face: its image file holds faces of another split too, and its dataset's split is per image (an image
    shared by two splits of a per-face split, as AFLW's, is the protocol)."""
    splits_of_image = faces.groupby("image_path")["split"].transform("nunique")
    per_face = faces["dataset"].map({name: split_is_per_face(name) for name in faces["dataset"].unique()})
    return (splits_of_image > 1) & ~per_face.astype(bool)


def _face_key(image_path: object, landmarks: object) -> str:
    """Same image and the same points to 0.01 px: one face annotated twice (e.g. a WFLW line repeated)."""
    points = _as_points(landmarks)
    rounded = "malformed" if points is None else np.round(points, 2).tobytes().hex()
    return f"{image_path}|{rounded}"


def _face_row(row: Any) -> dict[str, object]:
    points = _as_points(row.landmarks)
    box = _as_floats(row.bbox, 4)
    num_points = MALFORMED if points is None else len(points)
    finite = np.empty((0, 2)) if points is None else points[np.isfinite(points).all(axis=1)]
    layout = str(row.layout)
    return {
        "sample_id": str(row.sample_id),
        "image_path": str(row.image_path),
        "split": str(row.split),
        "layout": layout,
        "width": _as_float(row.width),
        "height": _as_float(row.height),
        "path_is_relative": _is_relative(str(row.image_path)),
        "n_points": num_points,
        "n_visible": _length(row.visible),
        "expected_points": LAYOUTS[layout].num_points if layout in LAYOUTS else math.nan,
        "all_finite": bool(np.isfinite(box).all() and (points is None or np.isfinite(points).all())),
        "min_x": finite[:, 0].min() if len(finite) else math.nan,
        "max_x": finite[:, 0].max() if len(finite) else math.nan,
        "min_y": finite[:, 1].min() if len(finite) else math.nan,
        "max_y": finite[:, 1].max() if len(finite) else math.nan,
        **{f"bbox_{name}": float(value) for name, value in zip(("x1", "y1", "x2", "y2"), box, strict=True)},
        **_dataset_facts(row, points, box),
    }


def _dataset_facts(row: Any, points: np.ndarray | None, box: np.ndarray) -> dict[str, object]:
    """The columns of the per-dataset checks (profiles.py): layout, subset names, visibility, subset flags."""
    dataset, subsets = str(row.dataset), [str(s) for s in _as_list(row.subsets)]
    visible = np.asarray(_as_list(row.visible), dtype=bool)
    return {
        "dataset": dataset,
        "layout_fits_dataset": layout_fits(dataset, str(row.layout)),
        "unknown_subsets": unknown_subsets(dataset, subsets),
        "visible_count": int(visible.sum()),
        "subset_flags_consistent": subset_flags_consistent(dataset, str(row.split), subsets, visible, points, box),
    }


def _as_list(value: object) -> list:
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return []


def _as_points(value: object) -> np.ndarray | None:
    """(K, 2) float array, or None when the cell is not a list of (x, y) pairs."""
    try:
        points = np.stack([np.asarray(p, dtype=np.float64) for p in value])  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return points if points.ndim == 2 and points.shape[1] == 2 else None


def _as_floats(value: object, size: int) -> np.ndarray:
    """`size` floats, NaN-filled when the cell is missing or has the wrong length (the no_nan check fails it)."""
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        array = np.empty(0)
    return array if array.shape == (size,) else np.full(size, math.nan)


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _length(value: object) -> int:
    try:
        return len(value)  # type: ignore[arg-type]
    except TypeError:
        return MALFORMED


def _is_relative(path: str) -> bool:
    try:
        check_relative_path(path, where="manifest")
    except ManifestError:
        return False
    return True


def format_int(value: float) -> str:
    """A size or count for messages; `?` where the manifest has none (NaN != NaN)."""
    return str(int(value)) if value == value else "?"
