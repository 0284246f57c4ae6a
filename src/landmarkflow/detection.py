"""Offline face detection, no download and no network: libfacedetection's YuNet CNN (the `yuface` wheel, weights
compiled in, BSD-3) where its wheel installs, else scikit-image's bundled LBP frontal-face cascade.

YuNet finds faces turned to profile, grey, tilted and small: 281 of the 300 synthetic test faces and all four real
dev faces, against the cascade's 76 and two (README: Predict), in 31 ms instead of 85 ms on a 512 px photo. Its
wheel exists for CPython 3.11 and older on x86-64 Linux and Windows only (pyproject's marker), and needs AVX2;
elsewhere the cascade, frontal-only, takes its place. `DETECTOR` says which one runs, and the environment variable
LANDMARKFLOW_DETECTOR (yunet or lbp) chooses.

Box convention: a detection is a loose face box (YuNet: forehead to chin, about 1.1x (0.9-1.3x) the tight landmark
box's side, and it may reach past the image's edge; the cascade: roughly brows to chin, square, inside the image), in
0-based pixels of the input image. It is NOT the tight landmark box of 300W ground truth that the 68-point models
learn from (with scale and shift jitter), so for them the Predictor reads a detected face again from the tight box of
its first answer (`Predictor.own_box_crops`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import cv2
import numpy as np
from skimage.data import lbp_frontal_face_cascade_filename
from skimage.feature import Cascade

WORKING_SIDE = 640  # longest side a detector scans; larger photos are downscaled first, for speed
YUNET_MIN_SCORE = 0.5  # libfacedetection's own threshold
MIN_WINDOWS = 4  # raw windows a face needs; lone windows are mostly texture false positives
MERGE_OVERLAP = 0.5  # intersection / smaller window area above which two windows are the same face
MIN_IMAGE_SIDE = 8  # a shorter side below this holds no face either detector finds


@dataclass(frozen=True)
class FaceBox:
    """A detected face: box corners in image pixels, and `score`: YuNet's confidence in [0, 1], or the number of raw
    cascade windows merged into it."""

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


def _lbp_windows(gray: np.ndarray, min_side: int) -> np.ndarray:
    """(M, 5) x1 y1 x2 y2 score in pixel edges of `gray`: the cascade's raw windows (every scale and position that
    fired) grouped by overlap; a group with at least MIN_WINDOWS members is one face, its box the members' mean."""
    shorter = min(gray.shape)
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
        return np.zeros((0, 5))
    windows = np.array([[d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]] for d in raw], dtype=np.float64)
    groups = [members for members in _group_windows(windows) if len(members) >= MIN_WINDOWS]
    faces = [[*members.mean(axis=0), len(members)] for members in groups]
    return np.array(faces, dtype=np.float64).reshape(-1, 5)


def _yunet_windows(gray_or_rgb: np.ndarray, min_side: int) -> np.ndarray:
    """(M, 5) x1 y1 x2 y2 score in pixel edges: YuNet's faces (after its own non-maximum suppression) at least
    `min_side` on their longer side."""
    bgr = cv2.cvtColor(gray_or_rgb, cv2.COLOR_GRAY2BGR if gray_or_rgb.ndim == 2 else cv2.COLOR_RGB2BGR)
    scores, boxes, _ = _yuface().detect(bgr, conf=YUNET_MIN_SCORE)  # int16 XYWH, confidence in percent
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    faces = np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], np.asarray(scores, np.float64) / 100])
    return faces[np.maximum(boxes[:, 2], boxes[:, 3]) >= min_side]


def _yuface() -> ModuleType:
    """The optional `yuface` module; ValueError saying what it needs when it is not installed, or its shared
    library does not load here (the detector chosen cannot run on this machine)."""
    try:
        import yuface
    except (ImportError, OSError) as exc:
        raise ValueError(
            f"the yunet face detector needs the yuface wheel (CPython <= 3.11 on x86-64 Linux or Windows): {exc}; "
            "use detector='lbp' or LANDMARKFLOW_DETECTOR=lbp"
        ) from exc
    return yuface


def _yunet_loads() -> bool:
    try:
        _yuface()
    except ValueError:
        return False
    return True


_DETECTORS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {"yunet": _yunet_windows, "lbp": _lbp_windows}
DETECTOR = os.environ.get("LANDMARKFLOW_DETECTOR") or ("yunet" if _yunet_loads() else "lbp")
"""The detector `detect_faces` runs by default: LANDMARKFLOW_DETECTOR's, else YuNet where the `yuface` wheel loads."""


def check_detector(detector: str = DETECTOR) -> None:
    """ValueError saying what is wrong when `detector` is unknown or cannot run here, so that a command or server
    refuses at start rather than on its first image without a box."""
    if detector not in _DETECTORS:
        raise ValueError(
            f"unknown face detector {detector!r} (detector= or LANDMARKFLOW_DETECTOR); expected one of "
            f"{sorted(_DETECTORS)}"
        )
    if detector == "yunet":
        _yuface()


def detect_faces(image_rgb: np.ndarray, min_size_fraction: float = 0.1, detector: str = DETECTOR) -> list[FaceBox]:
    """Faces at least `min_size_fraction` of the image's shorter side, largest first, found by `detector` ("yunet"
    or "lbp"). The scan runs on a copy whose longest side is at most WORKING_SIDE, and boxes are mapped back to the
    input's pixels."""
    check_detector(detector)
    image = np.asarray(image_rgb)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (0-255), got {image.dtype}")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        return []
    if image.ndim == 3:
        image = np.ascontiguousarray(image[..., :3])
        if detector == "lbp":
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    height, width = image.shape[:2]
    factor = min(1.0, WORKING_SIDE / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    shorter = min(image.shape[:2])
    min_side = min(shorter, max(24, round(min_size_fraction * shorter)))
    faces = []
    for *corners, score in _DETECTORS[detector](image, min_side):
        # Boxes are in pixel edges of the scanned copy; scale, then shift to 0-based pixel centres.
        x1, y1, x2, y2 = np.asarray(corners) / factor - 0.5
        faces.append(FaceBox(float(x1), float(y1), float(x2), float(y2), float(score)))
    return sorted(faces, key=lambda face: face.area, reverse=True)
