"""Dataset name -> native reader: the one table ingest consults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.manifest import FaceRecord

Reader = Callable[[Path, bool], tuple[list[FaceRecord], list[FormatError]]]


def _read_300w(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
    from landmarkflow.data.formats.w300 import read_300w_with_report

    records, report = read_300w_with_report(root, dataset="300w", strict=strict)
    return records, report.problems


def _read_wflw(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
    from landmarkflow.data.formats.wflw import read_wflw_with_report

    records, report = read_wflw_with_report(root, strict=strict)
    return records, report.problems


def _read_cofw(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
    from landmarkflow.data.formats.cofw import read_cofw_with_report

    records, report = read_cofw_with_report(root, strict=strict)
    return records, report.problems


def _read_cofw68(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
    from landmarkflow.data.formats.cofw import read_cofw68_with_report

    records, report = read_cofw68_with_report(root, strict=strict)
    return records, report.problems


def _read_aflw(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
    from landmarkflow.data.formats.aflw import read_aflw_with_report

    records, report = read_aflw_with_report(root, strict=strict)
    return records, report.problems


def _read_synthetic(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
    from landmarkflow.data.synthetic.writer import read_synthetic_with_report

    records, report = read_synthetic_with_report(root, strict=strict)
    return records, report.problems


READERS: dict[str, Reader] = {
    "300w": _read_300w,
    "wflw": _read_wflw,
    "cofw": _read_cofw,
    "cofw68": _read_cofw68,
    "aflw": _read_aflw,
    "synthetic": _read_synthetic,
}


def _reader(name: str, root: Path) -> Reader:
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(sorted(READERS))}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder for {name!r} does not exist")
    return READERS[name]


def read_dataset(name: str, root: str | Path) -> list[FaceRecord]:
    """Read dataset `name` from its native files under `root`; the first broken file raises its FormatError."""
    return _reader(name, Path(root))(Path(root), True)[0]


def read_dataset_leniently(name: str, root: str | Path) -> tuple[list[FaceRecord], list[FormatError]]:
    """Read every face that parses and collect the broken ones, for validation to report all at once."""
    return _reader(name, Path(root))(Path(root), False)
