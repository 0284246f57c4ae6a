"""RDFN's `model:` section (docs/models.md §5): checked without torch, so a config parses before any model is built."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from landmarkflow.layouts import LAYOUTS, face_regions
from landmarkflow.models.params.base import ModelParams

if TYPE_CHECKING:
    from landmarkflow.codecs.rdfn import RDFNCodec

STEM_STRIDE = 4


class RDFNParams(ModelParams):
    """The `model:` section for RDFN; defaults are the §5 reconstruction (input 256, 256 channels, 64x64 maps)."""

    name: Literal["rdfn"] = "rdfn"
    layout: Literal["68", "98", "29", "19"] = Field("68", description="landmark layout: its face regions")
    input_size: int = 256
    channels: int = Field(256, ge=8, description="width of the stem output, hourglasses and fusion")
    heatmap_size: int = Field(64, ge=4, description="detection grid side: input_size / 4 (the stem's stride)")
    detection_depth: int = Field(4, ge=1, le=6, description="levels of the detection hourglass")
    context_level: int = Field(2, ge=1, description="detection hourglass level sampled as coarse context")
    head_channels: int = Field(64, ge=4, description="shared CBR width of the detection heads")
    roi_size: int = Field(64, ge=4, description="side of the region grid the localisation works on")
    region_scale: float = Field(1.25, gt=1.0, le=3.0, description="region side / max side of the landmark box")
    detection_slack: float = Field(
        1.0, ge=1.0, le=2.0, description="the detected region's side x this: a region too small loses points for good"
    )
    region_views: tuple[float, ...] = Field(
        (1.0,),
        min_length=1,
        description="at inference the detected region's side x each of these; the views' points are averaged",
    )
    attention_reduction: int = Field(16, ge=1, description="channel attention bottleneck: channels / reduction")
    spatial_kernel: int = Field(7, ge=1, description="spatial attention conv kernel (odd)")
    stacks: int = Field(2, ge=1, le=8, description="localisation hourglasses")
    localisation_depth: int = Field(4, ge=1, le=6, description="levels of each localisation hourglass")
    dilations: tuple[int, ...] = Field((1, 2, 4, 8), min_length=1, description="multi-scale bottleneck dilations")
    region_channels: int = Field(32, ge=2, description="per-region width of the region-wise heads")
    centre_sigma_fraction: float = Field(1.0 / 6.0, gt=0, description="centre Gaussian sigma / landmark box side")
    score_sigma: float = Field(1.5, gt=0, description="score-map Gaussian sigma, region-grid cells")
    reweight_radius: int = Field(4, ge=1, description="location reweighting window: (2r+1)^2 cells")
    reweight_threshold: float = Field(0.05, ge=0, lt=1, description="weights max(S - t * S_max, 0)")
    score_loss_weight: float = Field(10.0, gt=0, description="weight of the summed per-stack score-map MSE")
    teacher_epochs: int | None = Field(
        10, ge=0, description="first epochs whose RoI is the jittered ground-truth region; None: every epoch"
    )
    teacher_jitter: float = Field(0.1, ge=0, lt=0.5, description="teacher region: max centre shift and side change")

    @model_validator(mode="after")
    def _consistent(self) -> RDFNParams:
        if LAYOUTS[self.layout].num_points != self.num_points:
            raise ValueError(
                f"layout {self.layout} has {LAYOUTS[self.layout].num_points} points but num_points is {self.num_points}"
            )
        if self.channels % 4:
            raise ValueError(f"channels must be a multiple of 4 (stem widths channels/4 and /2), got {self.channels}")
        if self.input_size != STEM_STRIDE * self.heatmap_size:
            raise ValueError(
                f"heatmap_size must be input_size / {STEM_STRIDE} (the stem's stride): input_size "
                f"{self.input_size} needs heatmap_size {self.input_size / STEM_STRIDE:g}, got {self.heatmap_size}"
            )
        for side, depth, what in (
            (self.heatmap_size, self.detection_depth, "heatmap_size and detection_depth"),
            (self.roi_size, self.localisation_depth, "roi_size and localisation_depth"),
        ):
            if side % 2**depth:
                raise ValueError(f"{what}: {side} must be divisible by 2**{depth} = {2**depth}")
        if self.context_level > self.detection_depth:
            raise ValueError(f"context_level {self.context_level} must be <= detection_depth {self.detection_depth}")
        if self.channels // self.attention_reduction < 1:
            raise ValueError(f"attention_reduction {self.attention_reduction} leaves no channels of {self.channels}")
        if self.spatial_kernel % 2 == 0:
            raise ValueError(f"spatial_kernel must be odd, got {self.spatial_kernel}")
        # as far as detection_slack may widen a region, and no smaller than half the detected one
        if not all(0.5 <= view <= 2.0 for view in self.region_views):
            raise ValueError(
                f"region_views must lie in [0.5, 2] (x the detected region's side), got {self.region_views}"
            )
        if min(self.dilations) < 1:
            raise ValueError(f"dilations must be >= 1, got {self.dilations}")
        self._reweighting_fits_the_margin()
        return self

    def _reweighting_fits_the_margin(self) -> None:
        """The reweighted weights of a landmark on the landmark box's edge must stay on the region grid, or the
        map edge cuts them and the decode drifts (0.37 px measured at roi 24, scale 1.25, sigma 1.5)."""
        margin = (self.region_scale - 1) / (2 * self.region_scale) * self.roi_size
        support = self.score_sigma * math.sqrt(2 * math.log(1 / max(self.reweight_threshold, 1e-12)))
        reach = min(self.reweight_radius, support)
        if margin + 0.5 < reach:
            raise ValueError(
                f"region margin {margin:.2f} cells (roi_size {self.roi_size}, region_scale {self.region_scale}) is "
                f"too small for the reweighting reach {reach:.2f} cells (score_sigma {self.score_sigma}, "
                f"threshold {self.reweight_threshold}, radius {self.reweight_radius}): raise region_scale or "
                "roi_size, or lower score_sigma"
            )

    def make_codec(self) -> RDFNCodec:
        """The codec these params describe (the dataset and the model share it); imported here, as it needs torch."""
        from landmarkflow.codecs.rdfn import RDFNCodec

        return RDFNCodec(
            self.num_points,
            self.input_size,
            self.heatmap_size,
            self.roi_size,
            face_regions(self.layout),
            self.region_scale,
            self.centre_sigma_fraction,
            self.score_sigma,
            self.reweight_radius,
            self.reweight_threshold,
            self.detection_slack,
        )
