"""Landmark overlays for contact sheets, reports and debugging: green visible points, red hidden ones."""

from __future__ import annotations

import cv2
import numpy as np

VISIBLE_COLOUR = (0, 220, 0)  # BGR
HIDDEN_COLOUR = (0, 0, 255)


def draw_landmarks(
    image: np.ndarray, points: np.ndarray, visible: np.ndarray | None = None, radius: int = 2
) -> np.ndarray:
    """A copy of a BGR (or grey) uint8 `image` with (K, 2) `points` drawn as dots; hidden points red."""
    canvas = np.array(image, dtype=np.uint8, copy=True)
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    flags = np.ones(len(pts), bool) if visible is None else np.asarray(visible, dtype=bool).reshape(-1)
    if flags.shape[0] != pts.shape[0]:
        raise ValueError(f"{pts.shape[0]} points but {flags.shape[0]} visibility flags")
    for (x, y), seen in zip(pts.tolist(), flags.tolist(), strict=True):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        centre = (round(x * 16), round(y * 16))
        cv2.circle(canvas, centre, radius * 16, VISIBLE_COLOUR if seen else HIDDEN_COLOUR, -1, cv2.LINE_AA, 4)
    return canvas
