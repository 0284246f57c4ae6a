"""LGCN post-processing: constrained PCA shape fitting on the heatmaps (docs/models.md §4.4), outside the ONNX graph.

The deployed graph outputs the network's own landmarks (argmax + sub-pixel step); this module is the paper's
post-step, run in numpy on the final heatmaps o2, averaged with the mirror crop's as the flip test averages the
points (`lgcn.shape_fitted_predictor` plugs it into `predict_records`; a deployed LGCN's ONNX outputs those maps as
well and `inference.Predictor` fits its own saved shape model). Free of torch, so that `predict` and `serve` run it
where only onnxruntime is installed:

1. `ShapeModel.fit`: training shapes (crop frame) rotated to the mean face about the crop centre; mean, the first
   12 principal directions scaled by their singular values, and every per-axis point ordering that holds in 100%
   of the training shapes (s_i - s_j < 0).
2. Rotation: Kabsch of the mean face onto the confident argmax points (peak >= thresh; else the
   max(4, round(1/thresh)) + 1 most confident).
3. Global fit: min_b sum_l sum_{u: P_l(u) > 0.01} P_l(u)^2 |a_l + (R E b)_l - u|^2 s.t. C(mu + E b) <= 0. The inner
   sum equals W_l |s_l - u_l|^2 + const with W_l = sum P^2 and u_l the P^2-weighted centroid, so it is a small
   weighted least squares with linear inequalities, solved exactly by Lawson & Hanson's LSI -> LDP -> NNLS
   reduction (the source uses MATLAB lsqlin; the Python port a cvxopt QP).
4. Refits with each map zeroed outside a (2w+1)^2 window around the current estimate, w = 20 then 7 px.
5. Snap each point to the nearest regional maximum q_l of its map; 6. blend with w_l = P_l(q_l):
   p_l = (1 - w_l) s_l + w_l (centroid of the min-max normalised 5 x 5 patch around q_l).
7. Not the paper's: the model's shape calibration (`shape_calibration_modes`, fitted after training on these fitted
   answers for the train faces) corrects the result, as it corrects the other models' answers inside their graphs.

Frames: 0-based pixel centres (the source is 1-based), so the rotation centre is (S - 1) / 2. Windows and the
patch are the paper's at 96 px and scale with the crop side. Mirrored training copies (which the paper's 5836
shapes may include) are not added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.optimize import nnls

from landmarkflow.geometry import crop_matrix, transform_points
from landmarkflow.models.shape_correction import ShapeCorrection

REFERENCE_SIZE = 96
"""Crop side at which the paper's windows and patch are given."""
CORRECTION_PREFIX = "correction_"
"""The .npz names of the shape calibration's arrays start with this."""
RIDGE = 1e-9
"""Relative ridge on the shape parameters: keeps the least squares solvable when few maps carry support."""


@dataclass(frozen=True)
class ShapeModel:
    """PCA shape model with ordering constraints, in a crop frame of side `size`."""

    mean: np.ndarray  # (K, 2)
    basis: np.ndarray  # (2K, n), rows ordered x0, y0, x1, y1, ...
    constraints: np.ndarray  # (M, 3) int: (i, j, axis) with s_i[axis] < s_j[axis] in every training shape
    size: int
    correction: ShapeCorrection | None = None  # the model's shape calibration, applied to the fitted points

    @classmethod
    def fit(cls, shapes: np.ndarray, size: int, num_modes: int = 12, iterations: int = 3) -> ShapeModel:
        """Build the model from (N, K, 2) training landmarks in crop pixels of an S = `size` crop."""
        shapes = np.asarray(shapes, dtype=np.float64)
        if shapes.ndim != 3 or shapes.shape[2] != 2 or len(shapes) < 2:
            raise ValueError(f"need (N >= 2, K, 2) training shapes, got shape {shapes.shape}")
        centre = (size - 1) / 2.0
        mean = shapes.mean(axis=0)
        aligned = shapes
        for _ in range(iterations):
            aligned = np.stack([centre + (s - centre) @ kabsch(s, mean).T for s in shapes])
            mean = aligned.mean(axis=0)
        centred = (aligned - mean).reshape(len(shapes), -1)
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        modes = min(num_modes, int((singular > singular[0] * 1e-10).sum()))
        basis = vt[:modes].T * singular[:modes]
        return cls(mean, basis, ordering_constraints(aligned), size)

    def shape(self, params: np.ndarray) -> np.ndarray:
        """(K, 2) model-frame shape mu + E b."""
        return self.mean + (self.basis @ params).reshape(-1, 2)

    def save(self, path: str | Path) -> Path:
        """Write the model as .npz to `path` as named (export writes it beside the ONNX it belongs to)."""
        path = Path(path)
        with path.open("wb") as file:
            corrections = self.correction.arrays(CORRECTION_PREFIX) if self.correction else {}
            np.savez(
                file, mean=self.mean, basis=self.basis, constraints=self.constraints, size=self.size, **corrections
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> ShapeModel:
        with np.load(Path(path)) as data:
            correction = ShapeCorrection.from_arrays(data, CORRECTION_PREFIX)
            return cls(data["mean"], data["basis"], data["constraints"], int(data["size"]), correction)


@dataclass(frozen=True)
class FitSettings:
    """The paper's fitting parameters (paper_params.mat): windows [20, 7], thresh public default 0.1."""

    windows: tuple[int, ...] = (20, 7)
    thresh: float = 0.1
    support: float = 0.01
    patch: int = 5


@dataclass(frozen=True)
class FaceFit:
    """One face: final points (image of the crop), the constrained model fit in both frames, and the rotation."""

    points: np.ndarray
    fitted: np.ndarray
    model_shape: np.ndarray
    rotation: np.ndarray = field(repr=False)


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2 x 2 rotation R (det +1) that best maps centred `source` points onto centred `target` points."""
    a = source - source.mean(axis=0)
    b = target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, d]) @ u.T


def ordering_constraints(shapes: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(M, 3) (i, j, axis) whose difference s_i - s_j is negative in every one of the (N, K, 2) shapes."""
    largest = np.full((shapes.shape[1], shapes.shape[1], 2), -np.inf)
    for start in range(0, len(shapes), chunk):
        part = shapes[start : start + chunk]
        largest = np.maximum(largest, (part[:, :, None, :] - part[:, None, :, :]).max(axis=0))
    return np.argwhere(largest < 0).astype(np.int64)


def solve_lsi(a: np.ndarray, y: np.ndarray, g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """min |a x - y| s.t. g x <= h (Lawson & Hanson ch. 23: LSI -> LDP -> NNLS); `a` must have full column rank."""
    q, r = np.linalg.qr(a)
    qty = q.T @ y
    if len(g) == 0:
        return np.linalg.solve(r, qty)
    g_tilde = g @ np.linalg.inv(r)
    e, f = -g_tilde, g_tilde @ qty - h  # g x <= h  <=>  e z >= f with z = r x - q^T y
    rows = np.vstack([e.T, f[None, :]])
    target = np.zeros(len(rows))
    target[-1] = 1.0
    u, _ = nnls(rows, target, maxiter=50 * rows.shape[1])
    residual = rows @ u - target
    if abs(residual[-1]) < 1e-12:
        raise ValueError("shape constraints are infeasible")
    return np.linalg.solve(r, -residual[:-1] / residual[-1] + qty)


def _weighted_targets(maps: np.ndarray, support: float) -> tuple[np.ndarray, np.ndarray]:
    """Per map W_l = sum P^2 over P > support, and the P^2-weighted centroid u_l (x, y)."""
    weights = np.where(maps > support, maps, 0.0) ** 2
    total = weights.sum(axis=(1, 2))
    axis = np.arange(maps.shape[-1], dtype=np.float64)
    safe = np.where(total > 0, total, 1.0)
    centroid = np.stack([(weights.sum(axis=1) @ axis) / safe, (weights.sum(axis=2) @ axis) / safe], axis=1)
    return total, centroid


def constrained_fit(maps: np.ndarray, model: ShapeModel, rotation: np.ndarray, support: float) -> np.ndarray:
    """Shape parameters b of step 3 for (K, S, S) non-negative maps and the model -> crop rotation."""
    centre = (model.size - 1) / 2.0
    weight, centroid = _weighted_targets(maps, support)
    in_model = centre + (centroid - centre) @ rotation  # R^T (u - c) + c, rows as points
    root = np.repeat(np.sqrt(weight), 2)
    design = root[:, None] * model.basis
    rhs = root * (in_model - model.mean).ravel()
    scale = max(float(np.abs(design).max()), 1.0)
    ridge = np.sqrt(RIDGE) * scale * np.eye(model.basis.shape[1])
    design, rhs = np.vstack([design, ridge]), np.concatenate([rhs, np.zeros(len(ridge))])
    i, j, axis = model.constraints.T
    g = model.basis[2 * i + axis] - model.basis[2 * j + axis]
    h = -(model.mean[i, axis] - model.mean[j, axis])
    return solve_lsi(design, rhs, g, h)


def _window(maps: np.ndarray, points: np.ndarray, half: int) -> np.ndarray:
    """Maps zeroed outside the (2 half + 1)^2 box around each (rounded) point."""
    axis = np.arange(maps.shape[-1])
    centre = np.rint(points).astype(np.int64)
    keep_x = np.abs(axis[None, :] - centre[:, 0:1]) <= half
    keep_y = np.abs(axis[None, :] - centre[:, 1:2]) <= half
    return maps * (keep_y[:, :, None] & keep_x[:, None, :])


def rotation_from_peaks(maps: np.ndarray, model: ShapeModel, thresh: float) -> np.ndarray:
    """Model -> crop rotation from the argmax points (step 2)."""
    size = maps.shape[-1]
    flat = maps.reshape(len(maps), -1)
    index = flat.argmax(axis=1)
    peaks = np.stack([index % size, index // size], axis=1).astype(np.float64)
    confidence = flat.max(axis=1)
    chosen = np.flatnonzero(confidence >= thresh)
    if len(chosen) < 2:
        count = max(4, round(1 / thresh)) + 1 if thresh > 0 else len(maps)
        chosen = np.argsort(-confidence)[:count]
    return kabsch(model.mean[chosen], peaks[chosen])


def snap_and_blend(maps: np.ndarray, fitted: np.ndarray, patch: int) -> np.ndarray:
    """Steps 5-6: move each fitted point towards its nearest regional maximum, by that maximum's height."""
    size = maps.shape[-1]
    half = patch // 2
    peaks = (maps == maximum_filter(maps, size=(1, 3, 3), mode="constant", cval=0.0)) & (maps > 0)
    out = fitted.copy()
    for index, (point, heat) in enumerate(zip(fitted, maps, strict=True)):
        rows, cols = np.nonzero(peaks[index])
        if len(rows) == 0:
            continue
        nearest = np.argmin((cols - point[0]) ** 2 + (rows - point[1]) ** 2)
        qy, qx = rows[nearest], cols[nearest]
        y0, y1, x0, x1 = max(qy - half, 0), min(qy + half + 1, size), max(qx - half, 0), min(qx + half + 1, size)
        values = heat[y0:y1, x0:x1]
        spread = values.max() - values.min()
        weights = (values - values.min()) / spread if spread > 0 else np.ones_like(values)
        weights /= weights.sum()
        ys, xs = np.mgrid[y0:y1, x0:x1]
        blended = np.array([(weights * xs).sum(), (weights * ys).sum()])
        confidence = float(np.clip(heat[qy, qx], 0.0, 1.0))
        out[index] = (1.0 - confidence) * point + confidence * blended
    return out


def fit_face(heatmaps: np.ndarray, model: ShapeModel, settings: FitSettings = FitSettings()) -> FaceFit:
    """Steps 2-6 for one face's (K, S, S) heatmaps (negative values are clipped to 0)."""
    maps = np.clip(np.asarray(heatmaps, dtype=np.float64), 0.0, None)
    if maps.shape[1:] != (model.size, model.size) or len(maps) != len(model.mean):
        raise ValueError(f"heatmaps {maps.shape} do not match the shape model ({len(model.mean)}, {model.size}^2)")
    scale = model.size / REFERENCE_SIZE
    centre = (model.size - 1) / 2.0
    rotation = rotation_from_peaks(maps, model, settings.thresh)
    params = constrained_fit(maps, model, rotation, settings.support)
    for window in settings.windows:
        in_crop = centre + (model.shape(params) - centre) @ rotation.T
        params = constrained_fit(
            _window(maps, in_crop, max(1, round(window * scale))), model, rotation, settings.support
        )
    model_shape = model.shape(params)
    fitted = centre + (model_shape - centre) @ rotation.T
    patch = max(3, 2 * round(settings.patch * scale / 2) + 1)
    return FaceFit(snap_and_blend(maps, fitted, patch), fitted, model_shape, rotation)


def fit_shapes(heatmaps: np.ndarray, model: ShapeModel, settings: FitSettings = FitSettings()) -> np.ndarray:
    """(N, K, S, S) final heatmaps o2 (with the flip test, averaged with the mirror crop's) -> (N, K, 2) shape-fitted
    landmarks in crop pixels, corrected by the model's shape calibration where it has one."""
    points = np.stack([fit_face(maps, model, settings).points for maps in np.asarray(heatmaps)])
    return points if model.correction is None else model.correction(points)


def crop_frame_shapes(landmarks: np.ndarray, boxes: np.ndarray, input_size: int, box_scale: float) -> np.ndarray:
    """(N, K, 2) image landmarks -> the crop frame the model sees (the evaluation crop: no augmentation)."""
    return np.stack(
        [transform_points(p, crop_matrix(b, input_size, box_scale)) for p, b in zip(landmarks, boxes, strict=True)]
    )
