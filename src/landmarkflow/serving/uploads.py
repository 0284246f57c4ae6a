"""What a request may carry, checked before any pixel reaches the model: an image within the size limits, and a
face box that lies on it. Each refusal is an `UploadError` with the HTTP status and a message naming the field."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from landmarkflow.imageio import decode_bgr
from landmarkflow.inference import check_on_image, parse_box

BBOX_FIELD = "bbox"
"""The optional face box: a query parameter or a multipart field `x1,y1,x2,y2`, as `predict --bbox`."""
IMAGE_FIELD = "image"
"""The multipart field of the image file."""


class UploadError(ValueError):
    """A request the server refuses: `status` (4xx) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """The largest request and image the server takes: a decompressed image is width x height x 3 bytes, so a
    small file can still be a huge image (the pixel limit is checked from its header, before decoding)."""

    max_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000


def decode_image(data: bytes, limits: Limits) -> np.ndarray:
    """HxWx3 uint8 RGB from encoded image bytes, decoded by OpenCV as `predict` decodes files."""
    if not data:
        raise UploadError(400, f"no image: the request body (or its {IMAGE_FIELD!r} field) is empty")
    if len(data) > limits.max_bytes:
        raise UploadError(413, f"image of {len(data)} bytes: the limit is {limits.max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                width, height = header.size
    except Image.DecompressionBombError as exc:
        raise UploadError(413, f"image too large: {exc}; the limit is {limits.max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError):
        raise UploadError(400, "not an image: the bytes are no image format the server reads") from None
    if width * height > limits.max_pixels:
        raise UploadError(
            413, f"image of {width} x {height} pixels: the limit is {limits.max_pixels} pixels (width x height)"
        )
    image = decode_bgr(data)
    if image is None:
        raise UploadError(400, "not an image: OpenCV cannot decode the bytes")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def parse_bbox(text: str | None, image_shape: tuple[int, ...]) -> list[list[float]] | None:
    """The one face box `x1,y1,x2,y2` as a list of boxes (None: detect faces); it may reach past the image's edges
    but must overlap it."""
    if text is None:
        return None
    try:
        return check_on_image([parse_box(text)], image_shape).tolist()
    except ValueError as exc:
        raise UploadError(422, f"{BBOX_FIELD}={text!r}: {exc}") from None
