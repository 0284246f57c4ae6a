"""HIH codec: an integer heatmap (H x H) says which cell, a decimal heatmap (D x D) says where inside it.

Encoding (per landmark, corner coordinates t = (p + 0.5) * H / S, cell k = floor(t), fraction f = t - k):
- integer map: Gaussian of sigma `int_sigma`, peak 1, centred on cell k;
- decimal map: one 2-D Gaussian of sigma `dec_sigma`, peak 1, whose column encodes f_x and whose row encodes
  f_y. The D pixels tile the cell, so in the decimal map's pixel-centre frame f sits at c = D * f - 0.5, and
  c spans the map [-0.5, D - 0.5) as f spans [0, 1).

Decoding: k = argmax of the integer map; c = log-Gaussian sub-pixel refinement of the decimal map's argmax
with the known sigma (`heatmap.refine_log_gaussian`); f = (c + 0.5) / D; p = (k + f) * S / H - 0.5.

`integer_fit` [ours; `subpixel: fit` in the config] takes the sub-cell position from the integer map instead:
its Gaussian sits on the continuous position t - 0.5 (pixel-centre frame) rather than on cell k, and decode fits a
log-Gaussian to the 7x7 window at its argmax (`heatmap.fit_log_gaussian`, DSAT's sub-pixel step). The decimal
target and head stay as they are (trained, not read): for a decimal head that learns nothing at a small budget
(configs/hih_synthetic.md).

Deviations from the released HIH code (starhiking/HeatmapInHeatmap), all to meet the codec contract
decode(encode(p)) == p within 0.05 px:
- The paper centres the decimal Gaussian on round(D * f), a 1/D-cell quantisation (up to 0.25 px at 256/64/8,
  and c = D falls off the map), and decodes with a plain argmax / D. We centre it on the continuous c and
  refine the argmax with the log-Gaussian formula, which is exact for a Gaussian target. A KL-trained logit
  map equals its target up to an additive constant, so the same refinement applies to model logits once the
  map minimum (the target is ~0 in the far corner) is subtracted.
- The paper's integer peak lands on k + 1 when k < 5 (a window-offset quirk); ours is always on k.
- Gaussians cover the whole map instead of a 10x10 / 7x7 window, so the log stays an exact parabola.

Points outside the crop get target weight 0 (their cells are clipped to the map edge and mean nothing).
Occluded points keep their targets and weight: their position is annotated, only the pixels are hidden.
"""

from __future__ import annotations

import numpy as np
import torch

from landmarkflow.codecs.base import Codec
from landmarkflow.codecs.heatmap import (
    WINDOW,
    argmax_2d,
    cells_to_crop,
    fit_log_gaussian,
    gaussian_maps,
    heatmap_cells,
    inside_crop,
    refine_log_gaussian,
)

DECIMAL_KEYS = ("dec_logits", "dec_heatmap")
"""Where decode finds the decimal scores: model logits first, else an encoded (batched) target."""


class HIHCodec(Codec):
    """Integer + decimal heatmap targets and their ONNX-exportable decode."""

    def __init__(
        self,
        num_points: int,
        input_size: int,
        heatmap_size: int,
        decimal_size: int,
        int_sigma: float,
        dec_sigma: float,
        integer_fit: bool = False,
    ) -> None:
        if decimal_size < 2:
            raise ValueError(f"decimal_size must be >= 2 (the sub-pixel step needs a neighbour), got {decimal_size}")
        if integer_fit and heatmap_size < WINDOW:
            raise ValueError(f"the integer fit needs heatmap_size >= {WINDOW} (its window), got {heatmap_size}")
        self.num_points = num_points
        self.input_size = input_size
        self.heatmap_size = heatmap_size
        self.decimal_size = decimal_size
        self.int_sigma = int_sigma
        self.dec_sigma = dec_sigma
        self.integer_fit = integer_fit

    def encode(self, landmarks: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """(K, 2) crop points -> int_heatmap (K, H, H), dec_heatmap (K, D, D), weight (K,), all float32."""
        points = self.checked_points(landmarks, visible)
        cell, fraction = heatmap_cells(points, self.input_size, self.heatmap_size)
        int_centre = cell + fraction - 0.5 if self.integer_fit else cell
        return {
            "int_heatmap": gaussian_maps(int_centre, self.heatmap_size, self.int_sigma),
            "dec_heatmap": gaussian_maps(self.decimal_size * fraction - 0.5, self.decimal_size, self.dec_sigma),
            "weight": inside_crop(points, self.input_size).astype(np.float32),
        }

    def decode(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Model outputs (int_heatmap + dec_logits) or batched targets (int_heatmap + dec_heatmap) -> (N, K, 2);
        with `integer_fit`, int_heatmap alone."""
        if self.integer_fit:
            if "int_heatmap" not in outputs:
                raise KeyError(f"HIH decode needs 'int_heatmap'; got {sorted(outputs)}")
            centre = fit_log_gaussian(outputs["int_heatmap"])
            return cells_to_crop(centre + 0.5, self.input_size, self.heatmap_size)
        decimal_key = next((key for key in DECIMAL_KEYS if key in outputs), None)
        if "int_heatmap" not in outputs or decimal_key is None:
            raise KeyError(f"HIH decode needs 'int_heatmap' and one of {DECIMAL_KEYS}; got {sorted(outputs)}")
        col, row = argmax_2d(outputs["int_heatmap"])
        cell = torch.stack([col, row], dim=-1).float()
        centre = refine_log_gaussian(outputs[decimal_key].float(), self.dec_sigma)
        fraction = (centre + 0.5) / self.decimal_size
        return cells_to_crop(cell + fraction, self.input_size, self.heatmap_size)
