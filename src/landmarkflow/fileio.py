"""Atomic file writes: a reader never sees a half-written file, and a failure leaves the old one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    """The process's umask (read once at import: setting it back and forth is not safe across threads)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""The mode `open()` gives a new file; mkstemp's own 0600 would hide datasets and results from other users."""


@contextmanager
def atomic_path(target: str | Path, mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds. The file gets
    `mode` from the start, so a private one (0o600) is never readable by others, not even for a moment."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.chmod(mode)  # still empty: nothing was readable under mkstemp's 0600
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(target: str | Path, text: str, mode: int = FILE_MODE) -> None:
    """Write `text` to `target` atomically, with `mode`."""
    with atomic_path(target, mode) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
