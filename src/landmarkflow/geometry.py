"""Crop geometry shared by training, evaluation and inference.

A face box (x1, y1, x2, y2) becomes a square crop of side `box_scale * max(w, h)` centred on the box,
resampled to `size` x `size` pixels. All maps are 2x3 affine matrices acting on 0-based pixel-centre
coordinates, which is also what cv2.warpAffine uses, so points and pixels never drift by half a pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def crop_matrix(
    bbox: np.ndarray,
    size: int,
    box_scale: float,
    rotation_deg: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    flip: bool = False,
) -> np.ndarray:
    """Image -> crop affine map for a box; `shift` moves the crop centre by fractions of the crop side."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    side = box_scale * max(x2 - x1, y2 - y1, 1.0)
    centre_x = (x1 + x2) / 2 + shift[0] * side
    centre_y = (y1 + y2) / 2 + shift[1] * side
    scale = size / side
    angle = math.radians(rotation_deg)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    out_centre = (size - 1) / 2
    # p_crop = R*S*(p - c) + out_centre, with R rotating the face by +rotation_deg in the crop.
    matrix = np.array(
        [
            [cos, sin, out_centre - cos * centre_x - sin * centre_y],
            [-sin, cos, out_centre + sin * centre_x - cos * centre_y],
        ]
    )
    if flip:
        mirror = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        matrix = (mirror @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    return matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine map."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine map to (..., 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample `image` into a `size` x `size` crop; outside the image is black (zero padding).

    A bilinear warp reads 2 x 2 pixels per output pixel: it sees every pixel of the image while it shrinks it at
    most 2x. A crop that shrinks more (a 400-pixel face drawn at 96) first averages the region it reads down to
    twice the crop's scale (INTER_AREA), so the model sees the photo smaller rather than a sparse, aliased sample
    of it, and as sharp as a face shrunk 2x, as the training crops are."""
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        image, matrix = _shrink_region(image, matrix, size, 2.0 * scale)
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _shrink_region(image: np.ndarray, matrix: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of `image` the crop reads, area-averaged down by `scale`, and the crop's map from that image."""
    corners = transform_points(
        np.array([[-1.0, -1.0], [size, -1.0], [-1.0, size], [size, size]]), invert_affine(matrix)
    )
    height, width = image.shape[:2]
    x0, y0 = (max(0, math.floor(v) - 1) for v in corners.min(axis=0))
    x1, y1 = min(width, math.ceil(corners[:, 0].max()) + 2), min(height, math.ceil(corners[:, 1].max()) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop lies outside the image: nothing to average
        return image, matrix
    region = image[y0:y1, x0:x1]
    small_w, small_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    fx, fy = small_w / (x1 - x0), small_h / (y1 - y0)
    # pixel centres: x_small = fx * (x - x0 + 0.5) - 0.5, so the image point x is x_small's preimage
    to_image = np.array([[1 / fx, 0.0, x0 + 0.5 / fx - 0.5], [0.0, 1 / fy, y0 + 0.5 / fy - 0.5], [0.0, 0.0, 1.0]])
    return small, matrix @ to_image
