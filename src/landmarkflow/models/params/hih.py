"""HIH's `model:` section (docs/models.md §3): checked without torch, so a config parses before any model is built."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from landmarkflow.models.params.base import ModelParams

if TYPE_CHECKING:
    from landmarkflow.codecs.hih import HIHCodec

Subpixel = Literal["decimal", "fit"]
"""Where HIH's sub-cell position comes from: the decimal heatmap (the paper) or a fit to the integer map."""
STEM_STRIDE = 4
MIN_FIT_SIGMA = 1.2
"""Narrowest integer Gaussian `subpixel: fit` reads within the codec contract: worst point (the map's border
included, 40 draws of the round-trip test's points) 0.003 cells off at 1.2, 0.016 at 1.0 (0.064 px at 4 px cells,
over the 0.05 px contract), 0.6 at 0.7."""
MAX_DECIMAL_FLOOR = 1e-2
"""Largest allowed decimal-target value in the far corner: decode subtracts the map minimum as the unknown
offset, which moves a decoded target by about 0.002 px at this value (0.03 px at 0.1, measured at 128/32/4)."""


class HIHParams(ModelParams):
    """The `model:` section for HIH; defaults are the paper's HIH_B."""

    name: Literal["hih"] = "hih"
    stacks: int = Field(4, ge=1, le=8, description="hourglass stacks: 1 = HIH_T, 2 = HIH_S, 4 = HIH_B")
    channels: int = Field(256, ge=8, description="hourglass width (stem widths are channels/4, /2, /2)")
    hourglass_depth: int = Field(4, ge=1, le=6, description="down/up levels per hourglass")
    input_size: int = 256
    heatmap_size: int = Field(64, ge=8, description="integer heatmap side; input_size / 4 (the stem's stride)")
    decimal_size: int = Field(8, ge=2, description="decimal heatmap side")
    int_sigma: float = Field(1.5, gt=0)
    dec_sigma: float = Field(1.0, gt=0)
    decimal_channels: int = Field(384, ge=8, description="width of the decimal head")
    dec_loss_weight: float = Field(0.05, ge=0)
    subpixel: Subpixel = Field(
        "decimal",
        description="where the sub-cell position comes from: the decimal heatmap (the paper), or a log-Gaussian "
        "fit to an integer heatmap drawn at the exact position (the decimal head is then trained but not read)",
    )

    @model_validator(mode="after")
    def _consistent_sizes(self) -> HIHParams:
        if self.channels % 4:
            raise ValueError(f"channels must be a multiple of 4 (stem widths channels/4 and /2), got {self.channels}")
        if self.input_size != STEM_STRIDE * self.heatmap_size:
            raise ValueError(
                f"heatmap_size must be input_size / {STEM_STRIDE} (the stem's stride): "
                f"input_size {self.input_size} needs heatmap_size {self.input_size / STEM_STRIDE:g}, "
                f"got {self.heatmap_size}"
            )
        if self.heatmap_size % 2**self.hourglass_depth:
            raise ValueError(
                f"heatmap_size {self.heatmap_size} must be divisible by 2**hourglass_depth = {2**self.hourglass_depth}"
            )
        ratio = self.heatmap_size / self.decimal_size
        if ratio < 4 or not ratio.is_integer() or not math.log2(ratio).is_integer():
            raise ValueError(
                f"heatmap_size / decimal_size must be a power of two >= 4 (the decimal head is a 3x3/s2 max-pool "
                f"to H/2 - 1, then log2(H/D) - 1 >= 1 stride-2 DownBlocks), got {self.heatmap_size}/{self.decimal_size}"
            )
        if self.subpixel == "fit" and self.int_sigma < MIN_FIT_SIGMA:
            raise ValueError(
                f"subpixel 'fit' needs int_sigma >= {MIN_FIT_SIGMA:g}: a narrower integer Gaussian at the map's "
                f"border leaves the fit too few pixels to keep its 0.05 px contract, got {self.int_sigma}"
            )
        corner = math.exp(-(((self.decimal_size - 1) / 2) ** 2) / self.dec_sigma**2)
        if corner > MAX_DECIMAL_FLOOR:
            raise ValueError(
                f"dec_sigma {self.dec_sigma} is too wide for decimal_size {self.decimal_size}: the decimal target "
                f"must be ~0 in the far corner (worst case {corner:.1e} > {MAX_DECIMAL_FLOOR:g}) for the decode"
            )
        return self

    def make_codec(self) -> HIHCodec:
        """The codec these params describe (the dataset and the model share it); imported here, as it needs torch."""
        from landmarkflow.codecs.hih import HIHCodec

        return HIHCodec(
            self.num_points,
            self.input_size,
            self.heatmap_size,
            self.decimal_size,
            self.int_sigma,
            self.dec_sigma,
            integer_fit=self.subpixel == "fit",
        )
