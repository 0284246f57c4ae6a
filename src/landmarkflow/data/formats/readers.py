"""Dataset name -> native reader: the one table ingest consults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from landmarkflow.data.manifest import FaceRecord


def _read_300w(root: Path) -> list[FaceRecord]:
    from landmarkflow.data.formats.w300 import read_300w

    return read_300w(root, dataset="300w")


def _read_synthetic(root: Path) -> list[FaceRecord]:
    from landmarkflow.data.synthetic import read_synthetic

    return read_synthetic(root)


READERS: dict[str, Callable[[Path], list[FaceRecord]]] = {
    "300w": _read_300w,
    "synthetic": _read_synthetic,
}


def read_dataset(name: str, root: str | Path) -> list[FaceRecord]:
    """Read dataset `name` from its native files under `root`."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(sorted(READERS))}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder for {name!r} does not exist")
    return READERS[name](root)
