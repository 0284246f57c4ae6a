"""Dataset name -> native reader: the one table ingest consults."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.manifest import FaceRecord

log = logging.getLogger(__name__)

Reader = Callable[[Path, bool], tuple[list[FaceRecord], list[FormatError]]]


def _lazy_reader(module: str, function: str, **options: object) -> Reader:
    """A Reader calling `module.function(root, strict=..., **options)`, which returns (records, report), and logging
    the report's summary (the images skipped for want of a landmark file among it); the module is imported on first
    use, so `ingest` loads only the format it reads."""

    def read(root: Path, strict: bool) -> tuple[list[FaceRecord], list[FormatError]]:
        records, report = getattr(importlib.import_module(module), function)(root, strict=strict, **options)
        log.info("%s", report.summary())
        return records, report.problems

    return read


_FORMATS = "landmarkflow.data.formats"
READERS: dict[str, Reader] = {
    "300w": _lazy_reader(f"{_FORMATS}.w300", "read_300w_with_report", dataset="300w"),
    "wflw": _lazy_reader(f"{_FORMATS}.wflw", "read_wflw_with_report"),
    "cofw": _lazy_reader(f"{_FORMATS}.cofw", "read_cofw_with_report"),
    "cofw68": _lazy_reader(f"{_FORMATS}.cofw", "read_cofw68_with_report"),
    "aflw": _lazy_reader(f"{_FORMATS}.aflw", "read_aflw_with_report"),
    "synthetic": _lazy_reader(f"{_FORMATS}.synthetic", "read_synthetic_with_report"),
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
