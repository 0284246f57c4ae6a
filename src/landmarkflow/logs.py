"""Logging for every entry point (CLI, components, torchrun ranks): our lines at INFO, libraries quiet."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from landmarkflow.outages import CLEAN_FAILURES


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """One line per event from landmarkflow; other libraries (MLflow, ONNX exporter, GX, DVC) only warn. A failure
    that names its cause (a service gone for longer than the retries wait) ends the process with that line alone:
    a component's log then shows it, not a traceback through MLflow's HTTP client."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.getLogger("landmarkflow").setLevel(level)
    sys.excepthook = _report_clean_failures


def _report_clean_failures(kind: type[BaseException], exc: BaseException, traceback: TracebackType | None) -> None:
    if isinstance(exc, CLEAN_FAILURES):
        print(f"error: {exc}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, exc, traceback)
