"""The one error type of the native-format readers and writers."""

from __future__ import annotations

from pathlib import Path


class FormatError(ValueError):
    """A native annotation file or folder breaks its format; the message names the file (and line) and what
    was expected, so a user can fix the data without reading our code."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
