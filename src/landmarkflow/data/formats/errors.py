"""The one error type of the native-format readers and writers."""

from __future__ import annotations

from pathlib import Path


class FormatError(ValueError):
    """A native annotation file or folder breaks its format; the message names the file (and line) and what
    was expected, so a user can fix the data without reading our code.

    `check` names the data-validation check the problem belongs to, so a lenient ingest can hand it to
    validation, which then reports it beside the manifest-level failures of the same kind.
    """

    def __init__(
        self, path: str | Path, message: str, line: int | None = None, check: str = "annotation_format"
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.check = check
        self.detail = message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
