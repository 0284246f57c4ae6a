"""The codec contract shared by every model."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch


class Codec(ABC):
    """Turns landmarks in crop pixels into targets, and model outputs back into crop pixels.

    `decode(encode(p))` must return p to within 0.05 px for points inside the crop: a quantisation
    error there is a bug, not a property of the method.
    """

    input_size: int
    num_points: int

    def checked_points(self, landmarks: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """`landmarks` as (K, 2) float64, after checking that K and the visibility flags match the codec."""
        points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
        flags = np.asarray(visible).reshape(-1)
        if len(points) != self.num_points or len(flags) != self.num_points:
            raise ValueError(
                f"expected {self.num_points} landmarks and visibility flags, got {len(points)} and {len(flags)}"
            )
        return points

    @abstractmethod
    def encode(self, landmarks: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """(K, 2) crop-pixel landmarks and (K,) visibility -> named target arrays for one sample."""

    @abstractmethod
    def decode(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Batched model outputs (or batched targets) -> (N, K, 2) crop-pixel coordinates.

        Written in plain torch ops so that it is part of the exported ONNX graph.
        """
