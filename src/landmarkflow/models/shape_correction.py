"""A fitted shape calibration's correction in numpy, for a post-step that runs where only onnxruntime is installed:
LGCN's shape fit (models/lgcn_shape.py) answers outside the graph, so its calibration cannot live in the graph as the
other models' does. The algebra is `ShapeCalibration.forward`'s, which a test holds this to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

TINY = 1e-12
"""Floor of the divisors, here and in `ShapeCalibration`: an unfitted calibration aligns to a zero mean shape. A clamp
there, as `+ 1e-12` is dropped from the exported graph."""


@dataclass(frozen=True)
class ShapeCorrection:
    """The buffers of a fitted `ShapeCalibration`, as float64 arrays."""

    moves: np.ndarray  # (K, 1): 0 for the eye points, which keep the answer
    mean_shape: np.ndarray  # (K, 2), centred, unit RMS
    centre: np.ndarray  # (2K,)
    basis: np.ndarray  # (modes, 2K)
    gain: np.ndarray  # (modes,)
    bias: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """(N, K, 2) points -> the same points with their shape modes corrected, in their own frame."""
        points = np.asarray(points, dtype=np.float64)
        centred = points - points.mean(axis=1, keepdims=True)
        x, y = centred[..., 0], centred[..., 1]
        norm = np.maximum((x * x + y * y).mean(axis=1, keepdims=True), TINY)
        scale = ((x * self.mean_shape[:, 0] + y * self.mean_shape[:, 1]).mean(axis=1, keepdims=True) / norm)[..., None]
        turn = ((x * self.mean_shape[:, 1] - y * self.mean_shape[:, 0]).mean(axis=1, keepdims=True) / norm)[..., None]
        aligned = _rotate(centred, scale, turn).reshape(len(points), 2 * points.shape[1])  # no -1: N may be 0
        coefficients = (aligned - self.centre) @ self.basis.T
        corrected = np.clip(self.gain * coefficients + self.bias, self.low, self.high)
        correction = ((corrected - coefficients) @ self.basis).reshape(points.shape)
        size = np.maximum(scale * scale + turn * turn, TINY)
        return points + self.moves * _rotate(correction, scale / size, -turn / size)

    @classmethod
    def names(cls) -> list[str]:
        """The fields, as `ShapeCalibration` names the buffers they come from."""
        return [field.name for field in fields(cls)]

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The fields as named arrays for an .npz, each name after `prefix`."""
        return {prefix + name: value for name, value in asdict(self).items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> ShapeCorrection | None:
        """What `arrays` wrote under `prefix`; None when the file has none (a model without a calibration)."""
        names = cls.names()
        if prefix + names[0] not in arrays:
            return None
        return cls(**{name: np.asarray(arrays[prefix + name], dtype=np.float64) for name in names})


def _rotate(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, K, 2) points times [[a, -b], [b, a]] per shape."""
    x, y = points[..., :1], points[..., 1:]
    return np.concatenate([a * x - b * y, b * x + a * y], axis=-1)
