"""DSAT codec: landmark Gaussian heatmaps plus boundary heatmaps as targets; argmax + log-Gaussian fit to decode.

Frames (codecs/heatmap.py): a crop point p has the heatmap pixel-centre coordinate c = (p + 0.5) * H / S - 0.5;
at the paper's geometry (S = H = 128) c = p.

Encoding (docs/models.md §2.2):
- landmark k: an unnormalised Gaussian of sigma `sigma`, peak 1, at c_k;
- boundary b: exp(-d^2 / (2 sigma_b^2)) where d < 2 sigma_b and 0.001 elsewhere, d being the distance of each
  pixel to the boundary's polyline (its chain of points from `Layout.boundaries`, in heatmap pixels).

Decoding (docs/models.md §2.4, steps 2-3): the integer argmax of each landmark map, then the paper's sub-pixel step:
a weighted least-squares fit of ln h = c0 + c1 i + c2 j + c3 i^2 + c4 j^2 to the 7x7 window around the argmax
(weights h^2, window shifted to stay inside the map), x = -c2 / (2 c4), y = -c1 / (2 c3). The flip test (step 1)
needs the network, so it lives in the model's `predict`.

Deviations from the released code (GERMINO-LiuHe/DSAT), for the codec contract decode(encode(p)) == p within
0.05 px:
- The paper centres a landmark Gaussian on the point truncated to an integer pixel (up to 1 px of quantisation);
  ours sits on the continuous c, and covers the whole map instead of a 19x19 window, so its log is an exact
  parabola and the fit recovers c exactly.
- Boundaries: the paper resamples each chain with a linear spline (120/32/25 points), rasterises 1-px lines and
  takes a mask-5 distance transform; the linear spline through the points *is* the polyline, so we measure the
  exact distance to it instead of its pixelised approximation.
- [ours, as §2.4 asks]: map values are clamped to >= 1e-6 before the log, and a fit that is not a peak
  (c3 >= 0 or c4 >= 0, or not finite) falls back to the argmax; a fitted centre is kept within half a pixel of
  the window, where a noisy map's fit could otherwise run off.

Weights: a landmark outside the crop gets weight 0 (its map is clipped to the edge and means nothing), a boundary
with a non-finite point gets weight 0; occluded points keep their targets (their positions are annotated).
"""

from __future__ import annotations

import numpy as np
import torch

from landmarkflow.codecs.base import Codec
from landmarkflow.codecs.heatmap import (
    WINDOW,
    cells_to_crop,
    fit_log_gaussian,
    gaussian_maps,
    heatmap_cells,
    inside_crop,
)
from landmarkflow.layouts import Layout

BOUNDARY_CUTOFF_SIGMAS = 2.0
"""Boundary maps keep the Gaussian for d < 2 sigma (d < 6 at sigma 3 in the code) and are 0.001 beyond."""
BOUNDARY_FLOOR = 1e-3


def polyline_distances(size: int, chains: list[np.ndarray]) -> np.ndarray:
    """(B, size, size) distance of every pixel centre to each polyline through its (P_b, 2) points (x, y).

    All segments of all chains are measured in one broadcast and reduced per chain, which keeps the per-sample
    cost at a few numpy calls however many boundaries a layout has (x and y are kept apart: numpy's reductions
    over a length-2 axis are slow).
    """
    starts = np.concatenate([chain[:-1] for chain in chains])
    direction = np.concatenate([chain[1:] for chain in chains]) - starts
    first_segment = np.cumsum([0] + [len(chain) - 1 for chain in chains[:-1]])
    axis = np.arange(size, dtype=np.float64)
    gx, gy = (g.reshape(-1, 1) for g in np.meshgrid(axis, axis))
    rx, ry = gx - starts[:, 0], gy - starts[:, 1]
    length_sq = np.maximum(direction[:, 0] ** 2 + direction[:, 1] ** 2, 1e-12)
    along = np.clip((rx * direction[:, 0] + ry * direction[:, 1]) / length_sq, 0.0, 1.0)
    distance_sq = (rx - along * direction[:, 0]) ** 2 + (ry - along * direction[:, 1]) ** 2
    return np.sqrt(np.minimum.reduceat(distance_sq, first_segment, axis=1)).T.reshape(len(chains), size, size)


def boundary_maps(distance: np.ndarray, sigma: float) -> np.ndarray:
    """LAB-style boundary heatmaps from distance maps: a Gaussian profile near the line, a small floor beyond."""
    near = distance < BOUNDARY_CUTOFF_SIGMAS * sigma
    return np.where(near, np.exp(-(distance**2) / (2.0 * sigma**2)), BOUNDARY_FLOOR).astype(np.float32)


class DSATCodec(Codec):
    """Landmark + boundary heatmap targets for one layout, and the ONNX-exportable single-map decode."""

    def __init__(self, layout: Layout, input_size: int, heatmap_size: int, sigma: float, boundary_sigma: float) -> None:
        if heatmap_size < WINDOW:
            raise ValueError(f"heatmap_size must be >= {WINDOW} (the sub-pixel fit's window), got {heatmap_size}")
        self.layout = layout
        self.num_points = layout.num_points
        self.input_size = input_size
        self.heatmap_size = heatmap_size
        self.sigma = sigma
        self.boundary_sigma = boundary_sigma
        self.boundary_chains = tuple(layout.boundaries.values())

    @property
    def num_boundaries(self) -> int:
        """Boundary channels the model predicts after the landmark channels."""
        return len(self.boundary_chains)

    def heatmap_centres(self, points: np.ndarray) -> np.ndarray:
        """(K, 2) crop points -> heatmap pixel-centre coordinates; non-finite points map to -0.5 (weight 0)."""
        cell, fraction = heatmap_cells(points, self.input_size, self.heatmap_size)
        return cell + fraction - 0.5

    def encode(self, landmarks: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """(K, 2) crop points -> heatmap (K, H, H), boundary (B, H, H), weight (K,), boundary_weight (B,), float32."""
        points = self.checked_points(landmarks, visible)
        chains = [points[list(chain)] for chain in self.boundary_chains]
        usable = np.array([np.isfinite(chain).all() for chain in chains])
        centres = [np.nan_to_num((chain + 0.5) * self.heatmap_size / self.input_size - 0.5) for chain in chains]
        boundary = boundary_maps(polyline_distances(self.heatmap_size, centres), self.boundary_sigma)
        boundary[~usable] = BOUNDARY_FLOOR
        return {
            "heatmap": gaussian_maps(self.heatmap_centres(points), self.heatmap_size, self.sigma),
            "boundary": boundary,
            "weight": inside_crop(points, self.input_size).astype(np.float32),
            "boundary_weight": usable.astype(np.float32),
        }

    def decode(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Landmark heatmaps (model output or batched target, key 'heatmap', (N, K, H, H)) -> (N, K, 2) crop px."""
        if "heatmap" not in outputs:
            raise KeyError(f"DSAT decode needs 'heatmap'; got {sorted(outputs)}")
        centre = fit_log_gaussian(outputs["heatmap"])
        return cells_to_crop(centre + 0.5, self.input_size, self.heatmap_size)
