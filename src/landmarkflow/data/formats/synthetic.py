"""The synthetic dataset on disk: the 300W folder layout plus `synthetic_meta.csv`, one row per face with the
parameters it was rendered from and its per-point visibility (which .pts files cannot hold).

`landmarkflow.data.synthetic` renders it; this module reads it back and writes the meta file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.w300 import ReadReport, read_300w_with_report
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.fileio import atomic_write_text
from landmarkflow.layouts import get_layout

META_FILE = "synthetic_meta.csv"
META_COLUMNS = (
    "sample_id",
    "stream",
    "hard",
    "yaw",
    "pitch",
    "roll",
    "mouth_open",
    "smile",
    "brow_raise",
    "eye_open",
    "face_size",
    "hair",
    "occluder",
    "occluded",
    "occluded_points",
    "blur",
    "motion_blur",
    "noise",
    "grayscale",
    "light_angle",
    "light_strength",
    "visible",
)


def write_meta(root: str | Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """Write `synthetic_meta.csv` atomically: a row per face with exactly `META_COLUMNS`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=META_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(root) / META_FILE
    atomic_write_text(path, buffer.getvalue())
    return path


def read_meta(root: str | Path) -> dict[str, dict[str, str]]:
    """`synthetic_meta.csv` as sample_id -> row, with errors naming the file and line."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FormatError(
            path,
            "missing: not a synthetic dataset, or its rendering was interrupted (render it again into an empty folder)",
        )
    points = get_layout("68").num_points
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("sample_id", "visible") if c not in (reader.fieldnames or [])]
        if missing:
            raise FormatError(path, f"header lacks the columns {missing}", 1)
        rows: dict[str, dict[str, str]] = {}
        for number, row in enumerate(reader, start=2):
            visible = row["visible"] or ""
            if len(visible) != points or set(visible) - {"0", "1"}:
                raise FormatError(path, f"visible must be {points} characters 0/1, found {visible!r}", number)
            rows[row["sample_id"]] = row
    return rows


def read_synthetic(root: str | Path) -> list[FaceRecord]:
    """The synthetic dataset as manifest records: `read_300w` plus per-point visibility from the meta file."""
    return read_synthetic_with_report(root, strict=True)[0]


def read_synthetic_with_report(root: str | Path, strict: bool = True) -> tuple[list[FaceRecord], ReadReport]:
    """`read_synthetic` with the reader's report; broken faces go to `report.problems` unless `strict`."""
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "is not a folder; expected a synthetic dataset (landmarkflow data synth)")
    meta = read_meta(root)
    visible = {sample_id: np.array([c == "1" for c in row["visible"]]) for sample_id, row in meta.items()}
    records, report = read_300w_with_report(root, dataset="synthetic", strict=strict, visible=visible)
    broken = {
        p.path.relative_to(root).with_suffix("").as_posix() for p in report.problems if p.path.is_relative_to(root)
    }
    faces = {r.sample_id for r in records}
    unknown = sorted(faces - meta.keys())
    stale = sorted(meta.keys() - faces - broken)
    if strict and (unknown or stale):
        raise FormatError(
            root / META_FILE,
            f"does not match the images: {len(unknown)} faces lack a row (e.g. {unknown[:3]}), "
            f"{len(stale)} rows lack a face (e.g. {stale[:3]})",
        )
    for sample_id in unknown:
        report.problems.append(
            FormatError(root / META_FILE, f"no row for face {sample_id} (its visibility is unknown)")
        )
    for sample_id in stale:
        report.problems.append(FormatError(root / META_FILE, f"row for face {sample_id}, which has no image or .pts"))
    return records, report
