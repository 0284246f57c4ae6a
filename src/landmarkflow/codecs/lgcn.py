"""LGCN codec: full-resolution heatmaps: the fixed blur kernel K applied to a sub-pixel label (docs/models.md §4).

The kernel K and the decode filters come from `codecs.lgcn_kernel`.

Targets (per landmark, crop pixel-centre frame, map side = input side):
- label y_l: unit mass split bilinearly onto the 4 pixels around the point (§4.2 [ours]; the paper's label images
  are unknown), so that sub-pixel positions survive; the target is K * y_l, drawn exactly as separable profiles on
  a canvas that extends past the crop, so a point in the crop's outer half pixel keeps its whole label;
- `label_mass` n_l = 1 for a point inside the crop (the unit label), 0 otherwise; `weight` m_l = 1 inside the crop.
  The paper's m_l is a visibility mask; like the HIH codec we keep occluded points (their position is annotated)
  and drop only points outside the crop, whose heatmaps are left at zero.

Decode. The paper decodes by an integer argmax (then the PCA fit of §4.4). We add a sub-pixel step that is exact
for targets: a target near its argmax is sum_b w_b K(u - b) over the 3 x 3 pixels b around it (the 4 non-zero w
are the bilinear label). Least squares on the 7 x 7 patch around the argmax gives w, and its first moment
sum_b w_b b / sum_b w_b is the point. Both moments are fixed linear filters of the patch (one set per position of
the argmax inside a border-clamped patch), so decode is gather + multiply-add and exports to ONNX.
"""

from __future__ import annotations

import numpy as np
import torch

from landmarkflow.codecs.base import Codec
from landmarkflow.codecs.heatmap import argmax_2d, inside_crop
from landmarkflow.codecs.lgcn_kernel import KERNEL_AMPLITUDES, PAPER_KERNEL_SIZE, PATCH, decode_filters, kernel_sigmas

MIN_MASS = 1e-6
"""Patches whose fitted label mass is below this decode at the argmax (no sub-pixel step)."""


def _splat_profiles(coords: np.ndarray, size: int, kernel_size: int) -> np.ndarray:
    """(K, 3, size): per Gaussian i, (1 - f) g_i(x - x0) + f g_i(x - x0 - 1) along one axis, x0 = floor(p)."""
    radius = (kernel_size - 1) // 2
    sigmas = kernel_sigmas(kernel_size)
    base = np.floor(coords)
    frac = coords - base
    axis = np.arange(size, dtype=np.float64)

    def gauss(delta: np.ndarray) -> np.ndarray:
        values = np.exp(-(delta[:, None, :] ** 2) / (2.0 * sigmas[None, :, None] ** 2))
        return np.where(np.abs(delta[:, None, :]) <= radius, values, 0.0)

    near = gauss(axis[None, :] - base[:, None])
    far = gauss(axis[None, :] - base[:, None] - 1.0)
    return (1.0 - frac)[:, None, None] * near + frac[:, None, None] * far


class LGCNCodec(Codec):
    """Blurred bilinear-label targets at input resolution and their ONNX-exportable sub-pixel decode."""

    def __init__(self, num_points: int, input_size: int, kernel_size: int = PAPER_KERNEL_SIZE) -> None:
        if input_size < PATCH:
            raise ValueError(f"input_size must be >= {PATCH} (the decode patch), got {input_size}")
        self.num_points = num_points
        self.input_size = input_size
        self.kernel_size = kernel_size
        self.filters = torch.from_numpy(decode_filters(kernel_size).astype(np.float32))

    def encode(self, landmarks: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """(K, 2) crop points -> heatmap (K, S, S), label_mass (K,), weight (K,), all float32."""
        points = self.checked_points(landmarks, visible)
        inside = inside_crop(points, self.input_size)
        safe = np.where(inside[:, None], points, 0.0)
        along_x = _splat_profiles(safe[:, 0], self.input_size, self.kernel_size)
        along_y = _splat_profiles(safe[:, 1], self.input_size, self.kernel_size)
        heatmap = np.einsum("i,kiy,kix->kyx", np.asarray(KERNEL_AMPLITUDES), along_y, along_x)
        heatmap *= inside[:, None, None]
        mass = inside.astype(np.float32)
        return {"heatmap": heatmap.astype(np.float32), "label_mass": mass, "weight": mass.copy()}

    def decode(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Model outputs or batched targets, both with `heatmap` (N, K, S, S) -> (N, K, 2) crop pixels."""
        if "heatmap" not in outputs:
            raise KeyError(f"LGCN decode needs 'heatmap'; got {sorted(outputs)}")
        maps = outputs["heatmap"].float()
        size = maps.shape[-1]
        col, row = argmax_2d(maps)
        start_x = (col - PATCH // 2).clamp(0, size - PATCH)
        start_y = (row - PATCH // 2).clamp(0, size - PATCH)
        steps = torch.arange(PATCH, device=maps.device)
        index = (start_y[..., None, None] + steps[:, None]) * size + start_x[..., None, None] + steps
        patch = maps.flatten(2).gather(2, index.flatten(2))
        case = (row - start_y) * PATCH + (col - start_x)
        filters = self.filters.to(maps.device).flatten(0, 1)[case]
        mass, moment_x, moment_y = (filters * patch[:, :, None, :]).sum(-1).unbind(-1)
        usable = mass > MIN_MASS
        safe_mass = torch.where(usable, mass, torch.ones_like(mass))
        offset = torch.stack([moment_x, moment_y], dim=-1) / safe_mass[..., None]
        offset = torch.where(usable[..., None], offset.clamp(-1.0, 1.0), torch.zeros_like(offset))
        return torch.stack([col, row], dim=-1).to(maps.dtype) + offset
