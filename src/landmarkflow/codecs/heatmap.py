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
WINDOW = 7
"""Side of the window `fit_log_gaussian` uses (DSAT's demo.py / hello.pyx)."""
LOG_FLOOR = 1e-6
"""Values are clamped here before their log: a map may be 0 or negative far from its peak."""
FIT_ALIVE = 1e-2
"""A window pixel carries data for `fit_log_gaussian` above this fraction of the window's maximum."""
FIT_MIN_LINES = 3
"""Rows and columns with data a fit needs: a quadratic along an axis is fixed by three lines, with fewer its
curvature comes from float noise, which PyTorch and onnxruntime round differently."""


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


def refine_log_gaussian(scores: torch.Tensor, sigma: float, floor: float = LOG_FLOOR) -> torch.Tensor:
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


def _solve(matrix: list[list[torch.Tensor]], rhs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gaussian elimination without pivoting on a batch of small SPD systems given entry by entry.

    Written out in elementwise ops (no linalg) so that it exports to ONNX; normal equations are SPD, so no
    pivoting is needed.
    """
    n = len(rhs)
    rows = [list(row) for row in matrix]
    rhs = list(rhs)
    for k in range(n):
        for r in range(k + 1, n):
            factor = rows[r][k] / rows[k][k]
            rows[r] = [rows[r][c] - factor * rows[k][c] for c in range(n)]
            rhs[r] = rhs[r] - factor * rhs[k]
    solution: list[torch.Tensor] = [torch.zeros_like(rhs[0])] * n
    for r in reversed(range(n)):
        known = sum((rows[r][c] * solution[c] for c in range(r + 1, n)), torch.zeros_like(rhs[r]))
        solution[r] = (rhs[r] - known) / rows[r][r]
    return solution


def _window_start(peak: torch.Tensor, length: int) -> torch.Tensor:
    """First index of the WINDOW pixels centred on `peak`, shifted to stay inside a line of `length`."""
    return (peak - WINDOW // 2).clamp(0, length - WINDOW)


def fit_log_gaussian(maps: torch.Tensor) -> torch.Tensor:
    """(N, K, 2) sub-pixel (x, y) peaks, in each map's pixel-centre frame, of (N, K, H, W) heatmaps (H, W >= 7).

    Weighted least squares of ln h against a separable quadratic over the 7x7 window at the argmax, weights h^2
    (docs/models.md §2.4). Window coordinates are centred on the window and values divided by their maximum, which
    keeps the 5x5 normal equations well conditioned in float32 without changing the fit's centre. A window with
    data on fewer than FIT_MIN_LINES rows or columns (a peak on the border of a map that is ~0 elsewhere) answers
    its argmax, as does a fit that is not a peak.
    """
    height, width = maps.shape[-2:]
    col, row = argmax_2d(maps)
    left, top = _window_start(col, width), _window_start(row, height)
    offsets = torch.arange(WINDOW, device=maps.device)
    rows = (top.unsqueeze(-1) + offsets).unsqueeze(-1)
    cols = (left.unsqueeze(-1) + offsets).unsqueeze(-2)
    window = maps.flatten(2).gather(2, (rows * width + cols).flatten(2)).float().clamp(min=LOG_FLOOR)
    window = window / window.max(dim=2, keepdim=True).values
    alive = (window > FIT_ALIVE).unflatten(2, (WINDOW, WINDOW))
    enough = (alive.any(dim=3).sum(dim=2) >= FIT_MIN_LINES) & (alive.any(dim=2).sum(dim=2) >= FIT_MIN_LINES)
    weights, logs = window**2, window.log()
    centred = offsets.to(window.dtype) - WINDOW // 2
    i = centred.repeat_interleave(WINDOW)
    j = centred.repeat(WINDOW)
    basis = [torch.ones_like(i), i, j, i * i, j * j]
    matrix = [[(weights * (a * b)).sum(-1) for b in basis] for a in basis]
    rhs = [(weights * logs * a).sum(-1) for a in basis]
    _, c1, c2, c3, c4 = _solve(matrix, rhs)
    dx, dy = -c2 / (2.0 * c4), -c1 / (2.0 * c3)
    fitted = enough & (c3 < 0) & (c4 < 0) & torch.isfinite(dx) & torch.isfinite(dy)
    mid_x, mid_y = (left + WINDOW // 2).to(window.dtype), (top + WINDOW // 2).to(window.dtype)
    reach = WINDOW // 2 + 0.5
    x = mid_x + torch.where(fitted, dx, col.to(window.dtype) - mid_x).clamp(-reach, reach)
    y = mid_y + torch.where(fitted, dy, row.to(window.dtype) - mid_y).clamp(-reach, reach)
    return torch.stack([x, y], dim=-1)
