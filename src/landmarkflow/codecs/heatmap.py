"""Heatmap helpers shared by the heatmap codecs: grid cells, Gaussian drawing, argmax and sub-pixel refinement.

Frames. Crop points p are 0-based pixel centres in an S x S crop. A heatmap of side H covers the same crop with
cells of S / H pixels; in *corner* coordinates t = (p + 0.5) * H / S the crop spans [0, H] and cell k spans
[k, k + 1). A map's own *pixel-centre* frame puts pixel i at i (its cell spans [i - 0.5, i + 0.5]), which is
where Gaussians are centred and where `refine_log_gaussian` answers.

The decode helpers use only argmax / gather / log arithmetic so that they export to ONNX inside `predict`.
"""

from __future__ import annotations

import numpy as np
import torch

FRACTION_MAX = 1.0 - 1e-6
"""Fractions are clipped below 1 so that a point on a cell's far edge stays in that cell."""


def inside_crop(points: np.ndarray, input_size: int) -> np.ndarray:
    """(K,) bool: finite and within the crop's pixel area [-0.5, S - 0.5] on both axes."""
    pts = np.asarray(points, dtype=np.float64)
    finite = np.isfinite(pts).all(axis=1)
    with np.errstate(invalid="ignore"):
        within = ((pts >= -0.5) & (pts <= input_size - 0.5)).all(axis=1)
    return finite & within


def heatmap_cells(points: np.ndarray, input_size: int, heatmap_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell k (K, 2) int64 in [0, H-1] and fraction f (K, 2) in [0, 1) of crop points on an H grid.

    Non-finite points map to cell 0, fraction 0 (their target weight is 0 anyway).
    """
    pts = np.nan_to_num(np.asarray(points, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    t = (pts + 0.5) * heatmap_size / input_size
    k = np.clip(np.floor(t), 0, heatmap_size - 1)
    f = np.clip(t - k, 0.0, FRACTION_MAX)
    return k.astype(np.int64), f


def cells_to_crop(cell: torch.Tensor, input_size: int, heatmap_size: int) -> torch.Tensor:
    """Corner-frame grid position (k + f) -> crop pixel-centre coordinate p = (k + f) * S / H - 0.5."""
    return cell * (input_size / heatmap_size) - 0.5


def gaussian_maps(centres: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(K, size, size) float32 unnormalised Gaussians (peak 1 at a pixel centre) at (K, 2) pixel-centre (x, y).

    Drawn over the whole map (no window truncation), so that its log is an exact parabola everywhere.
    """
    axis = np.arange(size, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    gx = np.exp(-((axis[None, :] - centres[:, 0:1]) ** 2) / (2.0 * sigma**2))
    gy = np.exp(-((axis[None, :] - centres[:, 1:2]) ** 2) / (2.0 * sigma**2))
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)


def argmax_2d(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column and row (each (N, K), int64) of the maximum of each (N, K, H, W) map."""
    width = maps.shape[-1]
    index = maps.flatten(2).argmax(dim=2)
    return index % width, torch.div(index, width, rounding_mode="floor")


def _refine_line(logs: torch.Tensor, peak: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian centre along (N, K, L) log-values from the peak and its larger neighbour (the inner one at an edge).

    For ln h(x) = a - (x - c)^2 / (2 sigma^2): c = i + 0.5 + sigma^2 (ln h[i+1] - ln h[i]) with the right
    neighbour, and c = i - 0.5 - sigma^2 (ln h[i-1] - ln h[i]) with the left one.
    """
    length = logs.shape[-1]
    centre = logs.gather(-1, peak.unsqueeze(-1)).squeeze(-1)
    left = logs.gather(-1, (peak - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
    right = logs.gather(-1, (peak + 1).clamp(max=length - 1).unsqueeze(-1)).squeeze(-1)
    use_right = (peak == 0) | ((peak < length - 1) & (right >= left))
    offset = torch.where(use_right, 0.5 + sigma**2 * (right - centre), -0.5 - sigma**2 * (left - centre))
    # The peak pixel holds the true centre of a Gaussian, so clamping to it only tames non-Gaussian maps.
    return peak.to(logs.dtype) + offset.clamp(-0.5, 0.5)


def refine_log_gaussian(scores: torch.Tensor, sigma: float, floor: float = 1e-6) -> torch.Tensor:
    """(N, K, 2) sub-pixel (x, y) centres, in each map's pixel-centre frame, of (N, K, M, M) Gaussian-like scores.

    `scores` may carry an unknown additive offset per map (a KL-trained logit map equals its target up to a
    constant): the map's minimum is subtracted, which assumes the target is ~0 somewhere (true for a Gaussian
    whose far corner lies several sigma away), then values are clamped to `floor` before the log. Along each
    axis the log-Gaussian through the argmax and one neighbour gives the centre, exact for a true Gaussian of
    known `sigma`.
    """
    height, width = scores.shape[-2:]
    flat = scores.flatten(2)
    shifted = (flat - flat.min(dim=2, keepdim=True).values).clamp(min=floor)
    logs = shifted.log().unflatten(2, (height, width))
    col, row = argmax_2d(scores)
    row_line = logs.gather(2, row[:, :, None, None].expand(-1, -1, 1, width)).squeeze(2)
    col_line = logs.gather(3, col[:, :, None, None].expand(-1, -1, height, 1)).squeeze(3)
    return torch.stack([_refine_line(row_line, col, sigma), _refine_line(col_line, row, sigma)], dim=-1)
