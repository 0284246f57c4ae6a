"""Logging for every entry point (CLI, components, torchrun ranks): our lines at INFO, libraries quiet."""

from __future__ import annotations

import logging


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """One line per event from landmarkflow; other libraries (MLflow, ONNX exporter, GX, DVC) only warn."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.getLogger("landmarkflow").setLevel(level)
