"""The manifest: one row per face, the contract between every reader, validator and trainer.

Columns (DESIGN.md): sample_id, dataset, split, subsets, image_path (relative to the dataset root),
width, height, bbox (x1 y1 x2 y2 pixels), landmarks (K x 2, 0-based pixel centres), visible (K bools),
layout. Stored as Parquet; in memory either a DataFrame or a list of `FaceRecord`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from landmarkflow.fileio import atomic_path
from landmarkflow.layouts import get_layout

COLUMNS: tuple[str, ...] = (
    "sample_id",
    "dataset",
    "split",
    "subsets",
    "image_path",
    "width",
    "height",
    "bbox",
    "landmarks",
    "visible",
    "layout",
)
TRAIN_SPLIT = "train"
"""The split models learn from (the only one the train step reads; its hold-out for validation comes from it)."""
# Faces a benchmark holds apart from its headline test set (300W's 600 private faces): the evaluate step reports
# them on their own, and neither the test metrics nor the gate ever see them.
PRIVATE_SPLIT = "private"


class ManifestError(ValueError):
    """A manifest (or a record bound for one) breaks the contract; the message names where and what."""


@dataclass(frozen=True)
class FaceRecord:
    """One annotated face in one image, in the manifest's conventions.

    Frozen, with read-only arrays and a tuple of subsets, so that a record is never changed after its checks:
    build it complete, or derive a new one with `dataclasses.replace`, which checks it again.
    """

    sample_id: str
    dataset: str
    split: str
    image_path: str
    width: int
    height: int
    bbox: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    layout: str
    subsets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        normalised = {
            "bbox": _read_only(np.array(self.bbox, dtype=np.float64).reshape(4)),
            "landmarks": _read_only(np.array(self.landmarks, dtype=np.float64)),
            "visible": _read_only(np.array(self.visible, dtype=bool).reshape(-1)),
            "width": int(self.width),
            "height": int(self.height),
            "subsets": tuple(str(s) for s in self.subsets),
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)  # the one place a frozen record is written: before its checks
        check_relative_path(self.image_path, where=f"sample {self.sample_id}")
        expected = get_layout(self.layout).num_points
        if self.landmarks.shape != (expected, 2):
            raise ManifestError(
                f"sample {self.sample_id}: landmarks have shape {self.landmarks.shape}, "
                f"layout {self.layout} expects ({expected}, 2)"
            )
        if self.visible.shape != (expected,):
            raise ManifestError(
                f"sample {self.sample_id}: visible has {self.visible.shape[0]} flags, layout {self.layout} "
                f"expects {expected}"
            )


def _read_only(array: np.ndarray) -> np.ndarray:
    """`array` (a record's own copy) made read-only, so that writing into it raises instead of changing a record."""
    array.flags.writeable = False
    return array


def check_relative_path(path: str, where: str) -> None:
    """Refuse absolute paths and paths that climb out of the dataset root."""
    pure = PurePosixPath(str(path).replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ManifestError(f"{where}: image_path {path!r} must be relative to the dataset root and stay inside it")


def to_frame(records: Iterable[FaceRecord]) -> pd.DataFrame:
    """Records -> manifest DataFrame (nested lists in the array columns, as Parquet stores them)."""
    rows = [
        {
            "sample_id": r.sample_id,
            "dataset": r.dataset,
            "split": r.split,
            "subsets": list(r.subsets),
            "image_path": r.image_path,
            "width": r.width,
            "height": r.height,
            "bbox": r.bbox.tolist(),
            "landmarks": r.landmarks.tolist(),
            "visible": r.visible.tolist(),
            "layout": r.layout,
        }
        for r in records
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"width": "int64", "height": "int64"}) if len(frame) else frame


def to_records(frame: pd.DataFrame) -> list[FaceRecord]:
    """Manifest DataFrame -> records, re-checking every row's shapes against its layout."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"manifest lacks columns {missing}; expected {list(COLUMNS)}")
    return [
        FaceRecord(
            sample_id=str(row.sample_id),
            dataset=str(row.dataset),
            split=str(row.split),
            subsets=tuple(row.subsets) if row.subsets is not None else (),
            image_path=str(row.image_path),
            width=row.width,
            height=row.height,
            bbox=np.asarray(row.bbox, dtype=np.float64),
            landmarks=np.stack([np.asarray(p, dtype=np.float64) for p in row.landmarks]),
            visible=np.asarray(row.visible, dtype=bool),
            layout=str(row.layout),
        )
        for row in frame.itertuples(index=False)
    ]


def in_split(records: Sequence[FaceRecord], split: str) -> list[FaceRecord]:
    """The records of one split, in manifest order."""
    return [r for r in records if r.split == split]


def write_manifest(frame_or_records: pd.DataFrame | Sequence[FaceRecord], path: str | Path) -> Path:
    """Write a manifest to Parquet atomically: the file is either the old one or the complete new one."""
    frame = frame_or_records if isinstance(frame_or_records, pd.DataFrame) else to_frame(frame_or_records)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"refusing to write {path}: missing columns {missing}")
    path = writable_manifest_path(path)
    with atomic_path(path) as tmp:
        frame.loc[:, list(COLUMNS)].to_parquet(tmp, index=False)
    return path


def writable_manifest_path(path: str | Path) -> Path:
    """`path`, where a manifest can be written; ManifestError when it is a folder."""
    path = Path(path)
    if path.is_dir():
        raise ManifestError(f"{path}: is a folder; expected a Parquet file path")
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest written by `write_manifest`, checking its columns."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ManifestError(f"{path}: not a readable Parquet manifest ({exc})") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"{path}: missing columns {missing}; expected {list(COLUMNS)}")
    return frame


def read_split(path: str | Path, split: str) -> list[FaceRecord]:
    """The records of one split of a manifest file, converting only that split's rows."""
    frame = read_manifest(path)
    return to_records(frame[frame["split"] == split])
