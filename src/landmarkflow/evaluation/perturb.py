"""Perturbed-box evaluation: how much a model's NME depends on the face box it is given (RDFN's point).

Each test box is moved by up to `shift` of its width/height and rescaled by a factor in `scale_range`, with a
fixed seed, so every model is judged on the same perturbed boxes. NME keeps the original box's normaliser.
"""

from __future__ import annotations

import numpy as np


def perturb_boxes(boxes: np.ndarray, shift: float, scale_range: tuple[float, float], seed: int) -> np.ndarray:
    """(N, 4) x1 y1 x2 y2 boxes, each centre moved by U(-shift, shift) x (w, h), its size scaled by U(scale_range)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    rng = np.random.default_rng(seed)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + rng.uniform(-shift, shift, size=(len(boxes), 2)) * size
    half = size * rng.uniform(*scale_range, size=(len(boxes), 1)) / 2
    return np.concatenate([centre - half, centre + half], axis=1)
