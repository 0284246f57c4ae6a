"""RDFN codec: face-region targets for the detection subnetwork and score maps on the region grid (docs/models.md §5).

Frames. Crop points p are 0-based pixel centres of an S x S crop; boxes are in *area* coordinates a = p + 0.5,
where the crop spans [0, S]. A region is a square box (x1, y1, x2, y2). The region grid has R x R cells; its
pixel-centre coordinate u maps to the crop as a = x1 + (u + 0.5) * side / R (the §5 formula
x = x0 + (u + 0.5) * w / R - 0.5 in pixel-centre terms).

Detection targets (CenterNet-style, on the H x H stem grid, H = S / 4): the face region is the box of the
(finite) landmarks, the layout knows no separate face box and the dataset hands the codec only points.
- `centre_heatmap` (1, H, H): Gaussian of sigma = max(w, h) / 6 (in cells), peak exactly 1 on the centre's cell;
- `region_cell` (2,) int64: that cell (clipped into the map when the centre lies outside the crop);
- `region_offset` (2,): centre minus cell, in cells (outside [0, 1) only for a clipped centre);
- `region_log_size` (2,): log(w / S), log(h / S) of the landmark box.
The region the localisation subnetwork sees is the square of side `region_scale * max(w, h)` on that centre:
the margin keeps every landmark several cells inside the region grid. The detector's region is widened by a
further `detection_slack` (1 = none): the two ways to miss are not alike, a region too small loses the points
beyond its edge for good, while one too large only coarsens the grid.

Landmark targets: `score_maps` (K, R, R), Gaussians of sigma `score_sigma` on the ground-truth region's grid,
and `points` (K, 2) with `weight` (K,) (1 inside the crop). Training renders the same Gaussians on the grid of
the region the model actually used (`render_score_maps`), as Mask R-CNN crops mask targets to its proposals,
so that the localiser learns from its own detector's regions; `score_maps` are the ground-truth-region maps
that decode(encode(p)) checks.

Decode: location reweighting on each score map (`reweighted_peaks`), then the region grid back to the crop.
§5 sketches it as a 5 x 5 window with weights max(S - S*/2, 0); that biases the centre by up to 0.045 cells
(0.1-0.2 px) on a Gaussian of sigma 1.5, over the 0.05 px contract. Our defaults, a 9 x 9 window and weights
max(S - 0.05 S*, 0), keep the reweighting and its clipping of the background and err by < 0.004 cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from landmarkflow.codecs.base import Codec
from landmarkflow.codecs.heatmap import argmax_2d, gaussian_maps, inside_crop

MIN_BOX_PX = 1.0
"""Smallest landmark-box side: keeps log-size finite for a single point or a degenerate layout."""


def square_regions(centre: torch.Tensor, size: torch.Tensor, region_scale: float) -> torch.Tensor:
    """(N, 4) square boxes (area coords) of side region_scale * max(w, h) on (N, 2) centres of (N, 2) sizes."""
    half = 0.5 * region_scale * size.max(dim=-1, keepdim=True).values
    return torch.cat([centre - half, centre + half], dim=-1)


def view_regions(regions: torch.Tensor, views: tuple[float, ...]) -> torch.Tensor:
    """(N, 4) square regions -> (N, V, 4): on the same centres, their sides x each of the V `views`."""
    scales = torch.tensor(views, dtype=regions.dtype, device=regions.device)
    centre = (regions[:, :2] + regions[:, 2:]) / 2
    sides = (regions[:, 2:3] - regions[:, 0:1]) * scales
    return square_regions(centre[:, None], sides[..., None], 1.0)


def crop_to_region(points: torch.Tensor, regions: torch.Tensor, roi_size: int) -> torch.Tensor:
    """(N, K, 2) crop pixel-centre points -> pixel-centre coordinates u on each (N, 4) region's R x R grid."""
    origin = regions[:, None, :2]
    side = (regions[:, 2:3] - regions[:, 0:1])[:, None, :]
    return (points + 0.5 - origin) * (roi_size / side) - 0.5


def region_to_crop(grid_points: torch.Tensor, regions: torch.Tensor, roi_size: int) -> torch.Tensor:
    """Inverse of `crop_to_region`: region-grid pixel-centre coordinates -> crop pixel-centre points."""
    origin = regions[:, None, :2]
    side = (regions[:, 2:3] - regions[:, 0:1])[:, None, :]
    return origin + (grid_points + 0.5) * (side / roi_size) - 0.5


def render_gaussians(centres: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(N, K, size, size) Gaussians of peak 1 at (N, K, 2) pixel-centre (x, y); the torch twin of gaussian_maps."""
    axis = torch.arange(size, device=centres.device, dtype=centres.dtype)
    gx = torch.exp(-((axis - centres[..., 0:1]) ** 2) / (2.0 * sigma**2))
    gy = torch.exp(-((axis - centres[..., 1:2]) ** 2) / (2.0 * sigma**2))
    return gy[..., :, None] * gx[..., None, :]


def reweighted_peaks(maps: torch.Tensor, radius: int, threshold: float) -> torch.Tensor:
    """(N, K, 2) location-reweighted peaks, in map pixel-centre coordinates, of (N, K, H, W) score maps.

    q* = argmax; over the (2r+1)^2 window around q* (clipped to the map), weights w_q = max(S(q) - t S(q*), 0)
    and the peak is sum(w_q q) / sum(w_q). A map with no positive weight (S(q*) <= 0) falls back to q*.
    """
    height, width = maps.shape[-2:]
    col, row = argmax_2d(maps)
    steps = torch.arange(-radius, radius + 1, device=maps.device)
    dy, dx = (d.reshape(-1) for d in torch.meshgrid(steps, steps, indexing="ij"))
    xs, ys = col[..., None] + dx, row[..., None] + dy
    valid = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    index = ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)
    flat = maps.flatten(2)
    scores = flat.gather(2, index)
    peak = flat.gather(2, (row * width + col)[..., None])
    weights = (scores - threshold * peak).clamp(min=0) * valid.to(maps.dtype)
    total = weights.sum(dim=-1)
    centroid = torch.stack([(weights * xs).sum(-1), (weights * ys).sum(-1)], dim=-1) / total.clamp(min=1e-12)[..., None]
    fallback = torch.stack([col, row], dim=-1).to(maps.dtype)
    return torch.where((total > 0)[..., None], centroid, fallback)


class RDFNCodec(Codec):
    """Face-region detection targets, region-grid score maps, and the ONNX-exportable region and landmark decode."""

    def __init__(
        self,
        num_points: int,
        input_size: int,
        heatmap_size: int,
        roi_size: int,
        regions: Mapping[str, tuple[int, ...]],
        region_scale: float = 1.25,
        centre_sigma_fraction: float = 1.0 / 6.0,
        score_sigma: float = 1.5,
        reweight_radius: int = 4,
        reweight_threshold: float = 0.05,
        detection_slack: float = 1.0,
    ) -> None:
        covered = sorted(i for points in regions.values() for i in points)
        if covered != list(range(num_points)):
            raise ValueError(f"regions must partition the {num_points} points exactly once, got {dict(regions)}")
        if region_scale <= 1.0:
            raise ValueError(f"region_scale must be > 1 (a margin around the landmarks), got {region_scale}")
        if detection_slack < 1.0:
            raise ValueError(f"detection_slack must be >= 1 (it widens the detected region), got {detection_slack}")
        self.num_points = num_points
        self.input_size = input_size
        self.heatmap_size = heatmap_size
        self.roi_size = roi_size
        self.regions = {name: tuple(points) for name, points in regions.items()}
        self.region_scale = region_scale
        self.centre_sigma_fraction = centre_sigma_fraction
        self.score_sigma = score_sigma
        self.reweight_radius = reweight_radius
        self.reweight_threshold = reweight_threshold
        self.detection_slack = detection_slack

    def encode(self, landmarks: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """(K, 2) crop points -> detection targets, the ground-truth region, score maps, points and weights."""
        points = self.checked_points(landmarks, visible)
        centre, size = self._landmark_box(points)
        scale = self.heatmap_size / self.input_size
        cell = np.clip(np.floor(centre * scale), 0, self.heatmap_size - 1)
        sigma = max(float(size.max()) * scale * self.centre_sigma_fraction, 0.5)
        finite = np.nan_to_num(points, nan=0.0, posinf=0.0, neginf=0.0)
        region = square_regions(torch.from_numpy(centre)[None], torch.from_numpy(size)[None], self.region_scale)
        return {
            "centre_heatmap": gaussian_maps(cell[None], self.heatmap_size, sigma),
            "region_cell": cell.astype(np.int64),
            "region_offset": (centre * scale - cell).astype(np.float32),
            "region_log_size": np.log(size / self.input_size).astype(np.float32),
            "region": region[0].numpy().astype(np.float32),
            "score_maps": self.render_score_maps(torch.from_numpy(finite)[None], region)[0].numpy(),
            "points": finite.astype(np.float32),
            "weight": inside_crop(points, self.input_size).astype(np.float32),
        }

    def _landmark_box(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre (area coords) and size of the finite landmarks' box; the whole crop when none is finite."""
        finite = np.isfinite(points).all(axis=1)
        if not finite.any():
            return np.full(2, self.input_size / 2.0), np.full(2, float(self.input_size))
        area = points[finite] + 0.5
        low, high = area.min(axis=0), area.max(axis=0)
        return (low + high) / 2.0, np.maximum(high - low, MIN_BOX_PX)

    def render_score_maps(self, points: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """(N, K, R, R) score-map targets for (N, K, 2) crop points on the grids of (N, 4) regions."""
        grid_points = crop_to_region(points.to(regions.dtype), regions, self.roi_size)
        return render_gaussians(grid_points, self.roi_size, self.score_sigma)

    def inside_region(self, points: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """(N, K) bool: the point falls on the region's grid, so its score map can have a peak."""
        grid_points = crop_to_region(points.to(regions.dtype), regions, self.roi_size)
        return ((grid_points >= -0.5) & (grid_points <= self.roi_size - 0.5)).all(dim=-1)

    def decode_region(
        self, centre_logits: torch.Tensor, offsets: torch.Tensor, log_sizes: torch.Tensor
    ) -> torch.Tensor:
        """Detection head maps (N, 1, H, H), (N, 2, H, H), (N, 2, H, H) -> (N, 4) square regions at the argmax, their
        side widened by `detection_slack`."""
        col, row = argmax_2d(centre_logits)
        index = (row * self.heatmap_size + col)[:, None, :].expand(-1, 2, -1)
        offset = offsets.flatten(2).gather(2, index)[..., 0]
        log_size = log_sizes.flatten(2).gather(2, index)[..., 0]
        cell = torch.cat([col, row], dim=-1).to(offset.dtype)
        centre = (cell + offset) * (self.input_size / self.heatmap_size)
        size = self.input_size * torch.exp(log_size.clamp(math.log(MIN_BOX_PX / self.input_size), math.log(4.0)))
        return square_regions(centre, size, self.region_scale * self.detection_slack)

    def decode(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Model outputs or batched targets (both carry `region` and `score_maps`) -> (N, K, 2) crop points.

        Outputs of a face read on V regions (`view_regions`: `region` (N, V, 4), `score_maps` (N, V, K, R, R)) decode
        to the mean of the views' points."""
        if "region" not in outputs or "score_maps" not in outputs:
            raise KeyError(f"RDFN decode needs 'region' and 'score_maps'; got {sorted(outputs)}")
        maps, regions = outputs["score_maps"].float(), outputs["region"].float()
        if maps.ndim == 5:
            views = maps.shape[1]
            points = self.decode({"score_maps": maps.flatten(0, 1), "region": regions.reshape(-1, 4)})
            return points.reshape(-1, views, self.num_points, 2).mean(dim=1)
        peaks = reweighted_peaks(maps, self.reweight_radius, self.reweight_threshold)
        return region_to_crop(peaks, regions, self.roi_size)
