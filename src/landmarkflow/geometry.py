"""Crop geometry shared by training, evaluation and inference.

A face box (x1, y1, x2, y2) becomes a square crop of side `box_scale * max(w, h)` centred on the box,
resampled to `size` x `size` pixels. All maps are 2x3 affine matrices acting on 0-based pixel-centre
coordinates, which is also what cv2.warpAffine uses, so points and pixels never drift by half a pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Tight box x1 y1 x2 y2 of (K, 2) points: 300W's ground-truth box convention, and what the models crop around."""
    pts = np.asarray(landmarks, dtype=np.float64)
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def box_overlaps_image(box: np.ndarray, width: int, height: int) -> bool:
    """Whether a box x1 y1 x2 y2 overlaps the pixel centres of a `width` x `height` image; it may reach past them."""
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)
    return bool(x2 > 0 and y2 > 0 and x1 < width - 1 and y1 < height - 1)


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


def checked_views(views: Sequence[float]) -> tuple[float, ...]:
    """`views` as a tuple of floats (`CropSpec.views`); ValueError unless they are at least one box-size factor, each
    finite, positive and read once."""
    views = tuple(float(v) for v in views)
    if not views or not all(math.isfinite(v) and v > 0 for v in views) or len(set(views)) < len(views):
        raise ValueError(f"crop views must be distinct positive box-size factors, at least one; got {list(views)}")
    return views


@dataclass(frozen=True)
class CropSpec:
    """How a model reads a face: a square of `box_scale` x the box's longer side, resampled to `size` x `size`
    pixels, shrinking the image by at most `max_shrink` in one bilinear step (`warp_image`). Training, evaluation,
    export's parity gate and predict all cut their crops through one of these, from the config
    (`ExperimentConfig.crop_spec`) or from the ONNX metadata (`DeployInfo.crop_spec`), so none of them can drift."""

    size: int
    box_scale: float
    max_shrink: float
    """No default: `math.inf` (no limit) must be asked for, as a config without `data.max_crop_shrink` does."""
    views: tuple[float, ...] = (1.0,)
    """The sizes (x `box_scale`) a face is read at when predicting; each crop's answer is mapped back and the views
    averaged in the image (`to_image`). Training crops are cut once, jittered in scale instead."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "views", checked_views(self.views))

    def matrix(
        self,
        bbox: np.ndarray,
        rotation_deg: float = 0.0,
        shift: tuple[float, float] = (0.0, 0.0),
        flip: bool = False,
        scale: float = 1.0,
    ) -> np.ndarray:
        """The image -> crop map for a box (`crop_matrix`); `scale` widens the crop beyond `box_scale`."""
        return crop_matrix(bbox, self.size, self.box_scale * scale, rotation_deg, shift, flip)

    def cut(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """The HxWx3 image's crop by `matrix`, as a `size` x `size` image of its dtype."""
        return warp_image(image, matrix, self.size, self.max_shrink)

    def view_matrices(self, bbox: np.ndarray, rotation_deg: float = 0.0) -> list[np.ndarray]:
        """The image -> crop maps of a box's views, in `views` order: what a face is read on when predicting."""
        return [self.matrix(bbox, rotation_deg, scale=view) for view in self.views]

    def to_image(self, crop_points: np.ndarray, matrices: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(N, K, 2) image points from the (N * V, K, 2) answers on crops cut by `matrices` (each face's V views in
        a row, as `view_matrices` gives them): each answer mapped back by its own crop's inverse, then averaged."""
        points = np.asarray(crop_points, dtype=np.float64)
        if not len(points) and not len(matrices):
            return np.zeros((0, *points.shape[1:]))
        if len(points) != len(matrices) or len(points) % len(self.views):
            raise ValueError(
                f"expected one answer per crop and {len(self.views)} crops a face, got {len(points)} answers for "
                f"{len(matrices)} crops"
            )
        mapped = np.stack([transform_points(p, invert_affine(m)) for p, m in zip(points, matrices, strict=True)])
        return mapped.reshape(-1, len(self.views), *mapped.shape[1:]).mean(axis=1)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine map."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine map to (..., 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def crop_shrink(matrix: np.ndarray) -> float:
    """How many image pixels one crop pixel spans (along a side): above 1 the crop shrinks the image."""
    return 1.0 / math.sqrt(abs(float(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int, max_shrink: float = math.inf) -> np.ndarray:
    """Resample `image` into a `size` x `size` crop; outside the image is black (zero padding).

    Bilinear sampling skips pixels when it shrinks: a crop that would shrink the image more than `max_shrink` reads
    it from the crop's region first reduced by pixel-area averaging, so that the bilinear step shrinks by about
    `max_shrink` (the reduced region's size is rounded to whole pixels). A model trained on crops that never shrank
    more than that then never sees the fine texture of a bigger face (skin, hair, JPEG blocks) folded into pixel
    noise."""
    matrix = np.asarray(matrix, dtype=np.float64)
    shrink = crop_shrink(matrix)
    if shrink > max_shrink:
        image, matrix = _area_reduced(image, matrix, size, max_shrink / shrink)
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def _area_reduced(image: np.ndarray, matrix: np.ndarray, size: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of `image` that a crop by `matrix` sees, resized by `factor` (< 1) with area averaging, and the crop
    matrix from that smaller image. Outside the image stays outside: the crop's black border lands where it did."""
    corners = np.array([[-1.0, -1.0], [size, -1.0], [-1.0, size], [size, size]])
    seen = transform_points(corners, invert_affine(matrix))
    height, width = image.shape[:2]
    x0, y0 = np.clip(np.floor(seen.min(axis=0)).astype(int) - 1, 0, [width, height])
    x1, y1 = np.clip(np.ceil(seen.max(axis=0)).astype(int) + 2, 0, [width, height])
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop sees (almost) nothing of the image: nothing to average
        return image, matrix
    region = image[y0:y1, x0:x1]
    new_width, new_height = max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor))
    reduced = cv2.resize(region, (new_width, new_height), interpolation=cv2.INTER_AREA)
    step_x, step_y = (x1 - x0) / new_width, (y1 - y0) / new_height  # pixel centres: x = (x' + 0.5) * step - 0.5
    to_image = np.array([[step_x, 0.0, 0.5 * step_x - 0.5 + x0], [0.0, step_y, 0.5 * step_y - 0.5 + y0], [0, 0, 1]])
    return reduced, matrix @ to_image
