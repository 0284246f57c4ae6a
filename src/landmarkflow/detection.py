"""Offline face detection with scikit-image's bundled LBP frontal-face cascade (no download, no network).

Box convention: a detection is a loose, square face box (roughly brows to chin, cheek to cheek), in
0-based pixels of the input image. It is NOT the tight landmark box of 300W ground truth that the 68-point
models learn from (with scale and shift jitter), so for them the Predictor reads a detected face again from the
tight box of its first answer (`Predictor.own_box_crops`). Detection is frontal-only: profile faces are often
missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from skimage.data import lbp_frontal_face_cascade_filename
from skimage.feature import Cascade

WORKING_SIDE = 640  # longest side the cascade scans; larger photos are downscaled first, for speed
MIN_WINDOWS = 4  # raw windows a face needs; lone windows are mostly texture false positives
MERGE_OVERLAP = 0.5  # intersection / smaller window area above which two windows are the same face


@dataclass(frozen=True)
class FaceBox:
    """A detected face: box corners in image pixels, and `score` = raw cascade windows merged into it."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def bbox(self) -> np.ndarray:
        """(4,) x1, y1, x2, y2."""
        return np.array([self.x1, self.y1, self.x2, self.y2])

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)


@lru_cache(maxsize=1)
def _cascade() -> Cascade:
    return Cascade(lbp_frontal_face_cascade_filename())


def _group_windows(windows: np.ndarray) -> list[np.ndarray]:
    """Union-find clusters of (M, 4) x1 y1 x2 y2 windows that overlap by MERGE_OVERLAP of the smaller one."""
    parent = list(range(len(windows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    areas = (windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1])
    for i in range(len(windows)):
        width = np.minimum(windows[i, 2], windows[i + 1 :, 2]) - np.maximum(windows[i, 0], windows[i + 1 :, 0])
        height = np.minimum(windows[i, 3], windows[i + 1 :, 3]) - np.maximum(windows[i, 1], windows[i + 1 :, 1])
        overlap = np.clip(width, 0, None) * np.clip(height, 0, None) / np.minimum(areas[i], areas[i + 1 :])
        for j in np.flatnonzero(overlap >= MERGE_OVERLAP) + i + 1:
            parent[root(int(j))] = root(i)
    clusters: dict[int, list[int]] = {}
    for i in range(len(windows)):
        clusters.setdefault(root(i), []).append(i)
    return [windows[members] for members in clusters.values()]


def detect_faces(image_rgb: np.ndarray, min_size_fraction: float = 0.1) -> list[FaceBox]:
    """Frontal faces at least `min_size_fraction` of the image's shorter side, largest first.

    The cascade's raw windows (every scale and position that fired) are grouped by overlap; a group with
    at least MIN_WINDOWS members becomes one face, its box the members' mean. The scan runs on a copy
    whose longest side is at most WORKING_SIDE, and boxes are mapped back to the input's pixels.
    """
    image = np.asarray(image_rgb)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or min(image.shape[:2]) < 8:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {image.shape}")
    gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    factor = min(1.0, WORKING_SIDE / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    shorter = min(gray.shape)
    min_side = min(shorter, max(24, round(min_size_fraction * shorter)))
    raw = _cascade().detect_multi_scale(
        img=gray,
        scale_factor=1.2,
        step_ratio=1,
        min_size=(min_side, min_side),
        max_size=(shorter, shorter),
        min_neighbor_number=1,
        intersection_score_threshold=2.0,  # above any possible overlap: skimage returns every window, we group
    )
    if not raw:
        return []
    windows = np.array([[d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]] for d in raw], dtype=np.float64)
    faces = []
    for members in _group_windows(windows):
        if len(members) >= MIN_WINDOWS:
            # Windows are in pixel edges of the scanned copy; scale, then shift to 0-based pixel centres.
            x1, y1, x2, y2 = members.mean(axis=0) / factor - 0.5
            faces.append(FaceBox(float(x1), float(y1), float(x2), float(y2), float(len(members))))
    return sorted(faces, key=lambda face: face.area, reverse=True)
