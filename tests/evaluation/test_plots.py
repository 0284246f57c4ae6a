from pathlib import Path

import numpy as np
import pytest
from skimage import data

from landmarkflow.evaluation.plots import plot_ced, plot_loss_curves, plot_overlay_grid

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(1)


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature."""
    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC and raw[12:16] == b"IHDR"
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_ced_png(tmp_path: Path) -> None:
    curves = {"hih": RNG.gamma(2.0, 0.015, 300), "mean shape": RNG.gamma(4.0, 0.03, 300)}
    path = plot_ced(curves, 0.10, tmp_path / "plots" / "ced.png")
    assert path == tmp_path / "plots" / "ced.png"
    assert _png_size(path) == (600, 450)
    assert _no_temp_files(path.parent)


def test_overlay_grid_png(tmp_path: Path) -> None:
    image = data.astronaut()
    gts = [RNG.uniform((180, 75), (270, 165), size=(68, 2)) for _ in range(5)]  # on the face
    preds = [g + RNG.normal(0, 3, size=g.shape) for g in gts]
    path = plot_overlay_grid([image] * 5, preds, gts, tmp_path / "overlays.png", cols=3, nmes=[0.031] * 5)
    width, height = _png_size(path)
    assert (width, height) == (900, 640)  # 3 columns x 2 rows
    single = plot_overlay_grid([image[..., 0]], preds[:1], gts[:1], tmp_path / "one.png", titles=["gray"])
    assert _png_size(single) == (300, 320)
    with pytest.raises(ValueError, match="2 nmes for 5 images"):
        plot_overlay_grid([image] * 5, preds, gts, tmp_path / "bad.png", nmes=[0.1, 0.2])


def test_loss_curves_png_and_empty_history(tmp_path: Path) -> None:
    history = {"train_loss": [2.0, 1.1, 0.6, 0.4, 0.35], "val_nme": [0.2, 0.12, 0.08, 0.06, 0.055], "images_per_s": []}
    assert _png_size(plot_loss_curves(history, tmp_path / "loss.png")) == (900, 350)
    assert _png_size(plot_loss_curves({"train_loss": [], "val_nme": []}, tmp_path / "empty.png")) == (900, 350)
    with pytest.raises(ValueError, match=r"history lacks \['val_nme'\]"):
        plot_loss_curves({"train_loss": [1.0]}, tmp_path / "x.png")
