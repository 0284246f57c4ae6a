"""DSAT's `model:` section (docs/models.md §2): checked without torch, so a config parses before any model is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from landmarkflow.layouts import LAYOUTS, get_layout
from landmarkflow.models.params.base import ModelParams

if TYPE_CHECKING:
    from landmarkflow.codecs.dsat import DSATCodec


class DSATParams(ModelParams):
    """The `model:` section for DSAT; defaults are the released code's 300W network (docs/models.md §2.1)."""

    name: Literal["dsat"] = "dsat"
    layout: Literal["68", "98", "29", "19"] = Field("68", description="landmark layout: flip pairs and boundaries")
    num_points: int = 68
    input_size: int = 128
    heatmap_size: int = Field(128, description="hourglass side (input / (2 * stem_stride)), or twice it")
    stem_stride: Literal[1, 2] = Field(1, description="conv1 stride: 1 in the paper")
    hourglasses: int = Field(4, ge=1, le=8)
    channels: int = Field(256, ge=8, description="hourglass width; stem widths channels/4 and channels/2")
    hourglass_depth: int = Field(4, ge=1, le=6, description="down/up levels per hourglass = DSS scales")
    head_channels: int = Field(128, ge=4, description="width of the head bottleneck")
    transformer_layers: int = Field(3, ge=1)
    transformer_heads: int = Field(4, ge=1)
    mlp_ratio: int = Field(4, ge=1)
    transformer_dropout: float = Field(0.1, ge=0, lt=1, description="embedding and attention dropout")
    sigma: float = Field(3.0, gt=0, description="landmark Gaussian sigma in heatmap pixels")
    boundary_sigma: float = Field(3.0, gt=0, description="boundary profile sigma in heatmap pixels")
    flip_test: bool = Field(True, description="predict averages the image's and its mirror's landmark heatmaps")

    @model_validator(mode="before")
    @classmethod
    def _points_from_layout(cls, data: Any) -> Any:
        """num_points defaults to the layout's, so a config names the layout once."""
        if isinstance(data, dict) and "num_points" not in data and str(data.get("layout")) in LAYOUTS:
            return {**data, "num_points": LAYOUTS[str(data["layout"])].num_points}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DSATParams:
        expected = get_layout(self.layout).num_points
        if self.num_points != expected:
            raise ValueError(f"num_points is {self.num_points} but layout {self.layout} has {expected} points")
        if self.channels % 4:
            raise ValueError(f"channels must be a multiple of 4 (stem widths channels/4 and /2), got {self.channels}")
        side, cells = self.hourglass_side, 2**self.hourglass_depth
        if self.input_size % (2 * self.stem_stride) or side % cells:
            raise ValueError(
                f"input_size {self.input_size} must be divisible by 2 * stem_stride * 2**hourglass_depth = "
                f"{2 * self.stem_stride * cells} (the stem halves it {self.stem_stride} time(s), each level again)"
            )
        if self.heatmap_size not in (side, 2 * side):
            raise ValueError(
                f"heatmap_size must be the hourglass side {side} or twice it {2 * side} "
                f"(input_size / (2 * stem_stride), optionally upsampled once by the head), got {self.heatmap_size}"
            )
        return self

    @property
    def hourglass_side(self) -> int:
        """Side of the hourglass features: the stem's conv1 stride and one max-pool."""
        return self.input_size // (2 * self.stem_stride)

    def make_codec(self) -> DSATCodec:
        """The codec these params describe (the dataset and the model share it); imported here, as it needs torch."""
        from landmarkflow.codecs.dsat import DSATCodec

        return DSATCodec(get_layout(self.layout), self.input_size, self.heatmap_size, self.sigma, self.boundary_sigma)
