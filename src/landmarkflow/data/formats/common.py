"""What every native-format module shares: image sizes from headers and image encoding."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import cv2
import numpy as np

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.imageio import decode_bgr

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
JPEG_QUALITY = 95


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image from its PNG or JPEG header, decoding it only when the header cannot tell
    (other formats, or a JPEG with EXIF, whose orientation OpenCV applies when the trainer reads it)."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return int(width), int(height)
        if head[:2] == b"\xff\xd8":
            size = _jpeg_header_size(f)
            if size is not None:
                return size
    image = decode_bgr(path.read_bytes())  # as training will decode it
    if image is None:
        raise FormatError(path, "cannot read this image (expected a .jpg or .png file)", check="image_opens")
    return int(image.shape[1]), int(image.shape[0])


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_header_size(f: io.BufferedReader) -> tuple[int, int] | None:
    """Walk JPEG segments to the frame header; None when an EXIF block or a damaged stream comes first."""
    f.seek(2)
    while True:
        byte = f.read(1)
        if byte != b"\xff":
            return None
        marker = f.read(1)
        while marker == b"\xff":
            marker = f.read(1)
        if not marker:
            return None
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:
            continue
        raw = f.read(2)
        if len(raw) < 2 or code in (0xD9, 0xDA):
            return None
        length = struct.unpack(">H", raw)[0]
        end = f.tell() + length - 2
        if code in _JPEG_SOF:
            frame = f.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return int(width), int(height)
        if code == 0xE1 and f.read(4) == b"Exif":
            return None
        f.seek(end)


def encode_image(path: Path, image: np.ndarray) -> bytes:
    """A BGR/grey image encoded for `path`'s suffix (JPEG at JPEG_QUALITY), to be written atomically."""
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if suffix in (".jpg", ".jpeg") else []
    ok, buffer = cv2.imencode(suffix, image, params)
    if not ok:
        raise FormatError(path, f"OpenCV cannot encode an image as {suffix}; expected one of {IMAGE_SUFFIXES}")
    return buffer.tobytes()
