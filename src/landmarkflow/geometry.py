"""Crop geometry shared by training, evaluation and inference.

A face box (x1, y1, x2, y2) becomes a square crop of side `box_scale * max(w, h)` centred on the box,
resampled to `size` x `size` pixels. All maps are 2x3 affine matrices acting on 0-based pixel-centre
coordinates, which is also what cv2.warpAffine uses, so points and pixels never drift by half a pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Tight box x1 y1 x2 y2 of (K, 2) points: 300W's ground-truth box convention, and what the models crop around."""
    pts = np.asarray(landmarks, dtype=np.float64)
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


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
    """Resample `image` into a `size` x `size` crop; outside the image is black (zero padding)."""
    return cv2.warpAffine(
        image,
        np.asarray(matrix, dtype=np.float64),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
