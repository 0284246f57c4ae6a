"""Evaluation plots logged to MLflow: CED curves, landmark overlays, training curves.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot state, safe in workers and
threads) and written atomically as PNG whatever the path's suffix, so a half-written plot never reaches
MLflow. Every function returns the path it wrote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.metrics import auc, ced_curve, threshold_tag
from landmarkflow.fileio import atomic_path
from landmarkflow.imageio import read_rgb

GT_COLOUR = "#2ecc40"
PRED_COLOUR = "#ff2020"


def _save(figure: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(figure)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def plot_ced(curves: Mapping[str, np.ndarray | Sequence[float]], threshold: float, path: str | Path) -> Path:
    """One cumulative error distribution per label (e.g. model vs mean shape), AUC@threshold in the legend."""
    figure = Figure(figsize=(6, 4.5))
    axes = figure.add_subplot()
    tag = threshold_tag(threshold)
    for label, nmes in curves.items():
        xs, ys = ced_curve(nmes, threshold)
        mean = 100 * float(np.mean(nmes))
        axes.plot(100 * xs, ys, label=f"{label}: AUC@{tag}% {auc(nmes, threshold):.3f}, NME {mean:.2f}%")
    axes.set_xlim(0, 100 * threshold)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("NME (%)")
    axes.set_ylabel("fraction of images")
    axes.set_title("Cumulative error distribution")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def _zoom_to_points(axes: Axes, points: np.ndarray, image_shape: tuple[int, int]) -> None:
    """Show the square around the points with a margin: faces are often small in whole photos."""
    finite = points[np.isfinite(points).all(axis=1)]
    if not len(finite):
        return
    low, high = finite.min(axis=0), finite.max(axis=0)
    centre, half = (low + high) / 2, max(float((high - low).max()) * 0.65, 8.0)
    half = min(half, max(image_shape) / 2)
    axes.set_xlim(centre[0] - half, centre[0] + half)
    axes.set_ylim(centre[1] + half, centre[1] - half)  # y grows downwards in images


def plot_overlay_grid(
    images: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    path: str | Path,
    cols: int = 4,
    titles: Sequence[str] | None = None,
    nmes: Sequence[float] | None = None,
) -> Path:
    """Grid of RGB images with true (green) and predicted (red) landmarks in image pixels.

    Each title shows the image's NME when `nmes` is given (it needs the layout's normaliser, which the
    caller has); otherwise the mean point error in pixels.
    """
    if not len(images) == len(preds) == len(gts):
        raise ValueError(f"{len(images)} images, {len(preds)} predictions and {len(gts)} ground truths")
    for given, name in ((titles, "titles"), (nmes, "nmes")):
        if given is not None and len(given) != len(images):
            raise ValueError(f"{len(given)} {name} for {len(images)} images")
    count = max(len(images), 1)
    cols = max(1, min(cols, count))
    rows = math.ceil(count / cols)
    figure = Figure(figsize=(3 * cols, 3.2 * rows))
    for index, (image, pred, gt) in enumerate(zip(images, preds, gts, strict=True)):
        axes = figure.add_subplot(rows, cols, index + 1)
        axes.imshow(image, cmap="gray" if np.ndim(image) == 2 else None)
        gt, pred = np.asarray(gt), np.asarray(pred)
        axes.scatter(gt[:, 0], gt[:, 1], s=6, c=GT_COLOUR, linewidths=0, label="truth")
        axes.scatter(pred[:, 0], pred[:, 1], s=6, c=PRED_COLOUR, linewidths=0, label="prediction")
        if nmes is not None:
            error = f"NME {100 * nmes[index]:.2f}%"
        else:
            error = f"err {np.linalg.norm(pred - gt, axis=-1).mean():.1f} px"
        name = titles[index] if titles is not None else f"#{index}"
        axes.set_title(f"{name}  {error}", fontsize=8)
        _zoom_to_points(axes, np.concatenate([gt, pred]), image.shape[:2])
        axes.set_axis_off()
    if images:
        figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(figure, path)


def plot_model_on_faces(
    label: str,
    nmes: np.ndarray,
    base_nmes: np.ndarray,
    preds: np.ndarray,
    records: Sequence[FaceRecord],
    root: Path,
    auc_threshold: float,
    overlay_count: int,
    paths: tuple[Path, Path],
    titled: bool = False,
) -> list[Path]:
    """A model measured on `records` (images under `root`), as people would rather see it: its CED (`label`) beside
    the mean shape's at `paths[0]`, and the first `overlay_count` faces with predicted and true landmarks and their
    NMEs at `paths[1]` (titled by face name if `titled`)."""
    ced = plot_ced({label: nmes, "mean shape": base_nmes}, auc_threshold, paths[0])
    shown = range(min(overlay_count, len(records)))
    overlay = plot_overlay_grid(
        [read_rgb(root / records[i].image_path) for i in shown],
        [preds[i] for i in shown],
        [records[i].landmarks for i in shown],
        paths[1],
        titles=[records[i].sample_id.rsplit("/", 1)[-1] for i in shown] if titled else None,
        nmes=[float(nmes[i]) for i in shown],
    )
    return [ced, overlay]


def plot_loss_curves(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Training loss per epoch and validation NME at the epochs that validated, side by side (an empty history gives
    empty axes)."""
    missing = [key for key in ("train_loss", "val_nme") if key not in history]
    if missing:
        raise ValueError(f"history lacks {missing}: has {sorted(history)}")
    figure = Figure(figsize=(9, 3.5))
    loss_axes, nme_axes = figure.subplots(1, 2)
    loss = list(history["train_loss"])
    validated = [(epoch, 100 * v) for epoch, v in enumerate(history["val_nme"], 1) if math.isfinite(v)]
    val_epochs, val_nme = [epoch for epoch, _ in validated], [v for _, v in validated]
    loss_axes.plot(range(1, len(loss) + 1), loss, marker="o", markersize=3)
    loss_axes.set_title("train loss")
    nme_axes.plot(val_epochs, val_nme, marker="o", markersize=3, color="tab:orange")
    nme_axes.set_title("validation NME (%)")
    for axes in (loss_axes, nme_axes):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if not loss and not val_nme:
            axes.set_xticks([])
            axes.set_yticks([])
            axes.text(0.5, 0.5, "no epochs trained", ha="center", va="center", transform=axes.transAxes)
    if loss and min(loss) > 0 and max(loss) / min(loss) > 100:
        loss_axes.set_yscale("log")
    figure.tight_layout()
    return _save(figure, path)
