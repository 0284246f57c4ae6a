"""Image decoding shared by training, evaluation and inference (torch-free, so `predict` stays light), and the
one way pictures for people (docs, sheets) are written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from landmarkflow.fileio import atomic_write_bytes


def decode_bgr(data: bytes) -> np.ndarray | None:
    """HxWx3 uint8 BGR from an encoded image's bytes (EXIF orientation applied), or None where OpenCV decodes none
    (a header claiming more pixels than OpenCV takes included).

    Files (`read_rgb`), the server's uploads and data validation all decode here, so they take and refuse the same
    images: OpenCV's `imread` returns a truncated JPEG part grey, its `imdecode` refuses it."""
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB, with an error naming the file."""
    if Path(path).is_dir():
        raise IsADirectoryError(f"{path}: a folder, not an image file")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    # The signature first: a video among the photos is refused before its gigabytes are read.
    image = decode_bgr(Path(path).read_bytes()) if cv2.haveImageReader(str(path)) else None
    if image is None:
        raise OSError(f"{path}: cannot read image (truncated, too large, or not an image format OpenCV decodes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: str | Path, image_bgr: np.ndarray) -> int:
    """Encode a BGR uint8 image in the format its suffix names (JPEG at quality 88, PNG at full compression) and
    write it atomically; returns the bytes written."""
    suffix = Path(path).suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 88] if suffix in (".jpg", ".jpeg") else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    try:
        ok, encoded = cv2.imencode(suffix, image_bgr, params)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode an image as {suffix!r}")
    atomic_write_bytes(path, encoded.tobytes())
    return len(encoded)
