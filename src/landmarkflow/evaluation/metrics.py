"""Landmark accuracy metrics: per-image NME, failure rate, AUC and the CED curve (docs/models.md §1.1).

NME follows HRNet and HIH: the mean error over *all* K points of an image, divided by the layout's
normalising distance (inter-ocular for 68/98/29 points, sqrt(w*h) of the box for AFLW's 19), then
averaged over images. Occluded points count like visible ones, as in the published COFW and WFLW numbers;
a visible-only NME would not be comparable with them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.integrate import simpson

from landmarkflow.layouts import Layout

if TYPE_CHECKING:
    from landmarkflow.data.manifest import FaceRecord

AUC_STEP = 1e-4


def per_image_nme(
    pred: np.ndarray,
    gt: np.ndarray,
    layout: Layout,
    bbox: np.ndarray | None = None,
    normaliser: str | None = None,
) -> np.ndarray:
    """(N,) NME of (N, K, 2) predictions against ground truth, both in the same (image) pixel frame."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    expected = (gt.shape[0], layout.num_points, 2)
    if gt.ndim != 3 or gt.shape != expected or pred.shape != expected:
        raise ValueError(
            f"layout {layout.name} needs (N, {layout.num_points}, 2) points: got pred {pred.shape}, gt {gt.shape}"
        )
    distance = layout.normalising_distance(gt, bbox, normaliser)
    degenerate = np.flatnonzero(~(distance > 0))
    if degenerate.size:
        raise ValueError(f"normalising distance is not positive for faces {degenerate[:10].tolist()}")
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=1) / distance


def mean_nme(pred: np.ndarray, records: Sequence[FaceRecord], layout: Layout, normaliser: str | None = None) -> float:
    """Mean NME of (N, K, 2) image-frame predictions against the records' landmarks (boxes from the records)."""
    gt = np.stack([r.landmarks for r in records])
    boxes = np.stack([r.bbox for r in records])
    return float(per_image_nme(pred, gt, layout, boxes, normaliser).mean())


def _nme_array(nmes: np.ndarray | Sequence[float]) -> np.ndarray:
    values = np.asarray(nmes, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("no NME values: the metric of an empty set is undefined")
    return values


def failure_rate(nmes: np.ndarray | Sequence[float], threshold: float) -> float:
    """Fraction of images whose NME is above `threshold` (NaN counts as a failure)."""
    values = _nme_array(nmes)
    return float(np.mean(~(values <= threshold)))


def ced_curve(
    nmes: np.ndarray | Sequence[float], threshold: float, step: float = AUC_STEP
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: xs = 0..threshold by `step`, ys = fraction of images with NME <= x.

    The grid is HIH's `arange(0, t + step, step)` for the usual t (0.08, 0.10), built with linspace so that
    float round-off never adds a point past t (arange does for t = 0.05: 502 points ending at 0.0501).
    """
    values = np.sort(_nme_array(nmes))
    count = round(threshold / step)
    xs = np.linspace(0.0, count * step, count + 1)
    ys = np.searchsorted(values, xs, side="right") / values.size
    return xs, ys


def auc(nmes: np.ndarray | Sequence[float], threshold: float, step: float = AUC_STEP) -> float:
    """Area under the CED up to `threshold`, divided by it (HIH: simpson(ys, xs) / t); 1 is perfect."""
    xs, ys = ced_curve(nmes, threshold, step)
    return float(simpson(ys, x=xs) / threshold)


def threshold_tag(threshold: float) -> str:
    """A threshold as a percentage for metric names: 0.10 -> '10', 0.08 -> '8', 0.075 -> '7.5'."""
    return f"{round(100 * threshold, 6):g}"


def _metric_safe(label: str) -> str:
    # MLflow metric names allow letters, digits, '_', '-', '.', '/' (and spaces, which we avoid).
    return re.sub(r"[^A-Za-z0-9_\-./]", "_", label)


def _summary(nmes: np.ndarray, fr_threshold: float, auc_threshold: float, suffix: str) -> dict[str, float]:
    return {
        f"nme{suffix}": float(np.mean(nmes)),
        f"fr_{threshold_tag(fr_threshold)}{suffix}": failure_rate(nmes, fr_threshold),
        f"auc_{threshold_tag(auc_threshold)}{suffix}": auc(nmes, auc_threshold),
    }


def summarize(
    nmes: np.ndarray | Sequence[float],
    fr_threshold: float = 0.10,
    auc_threshold: float = 0.10,
    subsets: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """Mean NME, FR and AUC under MLflow-safe names (`nme`, `fr_10`, `auc_10`), plus `<name>_<subset>`.

    `subsets` holds each image's subset labels (an image may be in several, e.g. ["common", "full"]).
    """
    values = _nme_array(nmes)
    metrics = _summary(values, fr_threshold, auc_threshold, "")
    if subsets is None:
        return metrics
    if len(subsets) != values.size:
        raise ValueError(f"{len(subsets)} subset label lists for {values.size} NME values")
    members: dict[str, list[int]] = {}
    for index, labels in enumerate(subsets):
        if isinstance(labels, str):
            raise TypeError(f"image {index}: subsets must be a list of labels, got the string {labels!r}")
        for label in labels:
            members.setdefault(label, []).append(index)
    for label in sorted(members):
        metrics.update(_summary(values[members[label]], fr_threshold, auc_threshold, f"_{_metric_safe(label)}"))
    return metrics
