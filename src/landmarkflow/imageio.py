"""Image decoding shared by training, evaluation and inference (torch-free, so `predict` stays light)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB, with an error naming the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"{path}: cannot read image (unreadable or not an image format OpenCV decodes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
