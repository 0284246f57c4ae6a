"""Mean-shape baseline: the training faces' average shape, placed in each test face's box.

It is the "for scale" NME logged beside every model: it knows the box and nothing about the face, so a
model that does not beat it clearly (we expect at least 3x) has learnt little.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landmarkflow.geometry import crop_matrix, invert_affine, transform_points


@dataclass(frozen=True)
class MeanShape:
    """The (K, 2) mean landmarks in the crop frame that models see (`size` pixels, `box_scale` around the box)."""

    shape: np.ndarray
    box_scale: float
    size: int

    @classmethod
    def fit(cls, landmarks: np.ndarray, boxes: np.ndarray, box_scale: float, size: int) -> MeanShape:
        """Average (N, K, 2) image-frame landmarks after mapping each face into its box's crop frame."""
        landmarks = np.asarray(landmarks, dtype=np.float64)
        boxes = np.asarray(boxes, dtype=np.float64)
        if landmarks.ndim != 3 or landmarks.shape[0] == 0 or boxes.shape != (landmarks.shape[0], 4):
            raise ValueError(f"need (N>0, K, 2) landmarks and (N, 4) boxes: got {landmarks.shape} and {boxes.shape}")
        in_crop = [transform_points(p, crop_matrix(b, size, box_scale)) for p, b in zip(landmarks, boxes, strict=True)]
        return cls(np.mean(in_crop, axis=0), box_scale, size)

    def predict(self, boxes: np.ndarray) -> np.ndarray:
        """(N, K, 2) image-frame landmarks: the mean shape mapped back through each box's crop."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        out = np.empty((len(boxes), *self.shape.shape))
        for index, box in enumerate(boxes):
            out[index] = transform_points(self.shape, invert_affine(crop_matrix(box, self.size, self.box_scale)))
        return out
