"""RDFN: Region-aware Deep Feature-fused Network (Lin & Liang, Mathematics 2023), the "RDFN-R" of docs/models.md §5.

Only the abstract is known (§5, §7): a region detection subnetwork that finds the face in a loosely cropped
input, cross-task fusion of multi-semantic region features with global channel and spatial attention, a
region-wise localisation subnetwork with multi-scale context and better gradient flow, and location-reweighting
decode. Every layer below is the §5 reconstruction, [ours]:

    input 3 x S x S (ImageNet mean/std inside) -> HIH stem (§3.1)                      -> F0: C x H x H, H = S/4
    detection hourglass (depth d) on F0                                                 -> D: C x H x H, and its
        level-2 output B (C x H/4 x H/4, the "16 x 16 bottleneck" at S = 256)
    CenterNet heads on D: centre logits (1), log-size (2), offset (2)  -> square region at the argmax (codec)
    RoI features: F0, D and B sampled on the region's R x R grid (bilinear grid_sample)
    cross-task fusion: Z = CBR1x1(concat) ; Z *= channel attention ; Z *= spatial attention ; X0 = RoI(F0) + Z
    localisation: T hourglasses on the R x R grid; stack t gets X0 + the merges of all earlier stacks (dense
        skips); each hourglass bottleneck is a sum of dilated 3x3 convs (multi-scale context); each stack
        predicts K score maps through region-wise heads (one branch per face region, layouts.face_regions)
    decode: location reweighting of the last stack's maps, region grid -> crop (codec)

Choices where §5 is silent or where we depart from it, and why:
- Teacher forcing as §5: for the first `teacher_epochs` epochs RoIAlign samples the ground-truth region, its
  centre shifted and its side scaled by up to `teacher_jitter` (uniform), handed to `forward` through
  `training_inputs`; afterwards, and always at inference, the detector's own region (detached: no gradient
  through box coordinates, as in Mask R-CNN). The loss renders each stack's targets on the grid of the region
  used. Points off that grid get weight 0.
- The region is the landmark box (the codec sees only points), squared and enlarged by `region_scale` 1.25 so
  that every landmark sits at least the reweighting window inside the grid.
- B is sampled directly at its 1/4 resolution (bilinear grid_sample) instead of being upsampled x4 first: the
  same bilinear values without materialising the upsampled map.
- Dense skips "stack k receives the sum of the stem features and all earlier stack outputs" are written as that
  sum; with additive merges it equals the stacked-hourglass residual chain of HIH.
- Region-wise localisation: "region-wise" is read as per face region: a shared 1x1 CBR, a grouped 3x3 CBR (one
  group per region) and per-region 1x1 convs to that region's points.
- Detection heads share one CBR 3x3 (C -> `head_channels`) before their 1x1 convs; the centre bias starts at
  -2.19 (CenterNet's prior 0.1). Detection loss: focal (alpha 2, beta 4) + L1 log-size + L1 offset, weights 1.
- Decode window 9 x 9 and threshold 0.05 instead of §5's 5 x 5 and 0.5 (codecs/rdfn.py says why).
- Init: HIH's N(0, 0.001) convs (the same lineage); no pretrained weights exist.
The paper gives no parameter count or FLOPs; the §5 build at 68 points has 14.255 M parameters, 25.3 GFLOPs.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from landmarkflow.codecs.rdfn import RDFNCodec, square_regions
from landmarkflow.layouts import LAYOUTS, face_regions
from landmarkflow.models.base import LandmarkModel, ModelParams
from landmarkflow.models.blocks import CBR, Hourglass, ImageNetNormalize, Res, hourglass_stem, init_normal
from landmarkflow.models.registry import register

STEM_STRIDE = 4
CENTRE_PRIOR = 0.1
"""CenterNet's initial centre probability: the heatmap starts near-uniform and low, not at 0.5 everywhere."""
FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0


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
    teacher_epochs: int = Field(10, ge=0, description="first epochs whose RoI is the jittered ground-truth region")
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
        """The codec these params describe (the dataset and the model share it)."""
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
        )


def roi_align(features: torch.Tensor, regions: torch.Tensor, roi_size: int, input_size: int) -> torch.Tensor:
    """Bilinear samples (N, C, R, R) of (N, C, h, w) features at the cell centres of (N, 4) crop-area regions.

    The feature map covers the crop [0, S] whatever its resolution, so a crop-area coordinate a is the
    normalised grid_sample coordinate 2a/S - 1 (align_corners=False); outside the crop reads zeros.
    """
    cells = (torch.arange(roi_size, device=features.device, dtype=regions.dtype) + 0.5) / roi_size
    side = regions[:, 2:] - regions[:, :2]
    xs = (regions[:, 0:1] + cells * side[:, 0:1]) * (2.0 / input_size) - 1.0
    ys = (regions[:, 1:2] + cells * side[:, 1:2]) * (2.0 / input_size) - 1.0
    grid = torch.stack([xs[:, None, :].expand(-1, roi_size, -1), ys[:, :, None].expand(-1, -1, roi_size)], dim=-1).to(
        features.dtype
    )
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def hourglass_with_level(hourglass: Hourglass, x: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The hourglass output and the output of its `level`-th inner hourglass (level 0 = the whole one)."""
    if level == 0:
        out = hourglass(x)
        return out, out
    inner, captured = hourglass_with_level(hourglass.inner, hourglass.down(F.max_pool2d(x, 2)), level - 1)
    low = hourglass.after(inner)
    return hourglass.up(x) + F.interpolate(low, scale_factor=2.0, mode="bilinear", align_corners=True), captured


class MultiScaleContext(nn.Module):
    """Hourglass bottleneck: the sum of parallel dilated 3x3 conv + BN branches, plus the input, then ReLU."""

    def __init__(self, channels: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(channels))
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + sum(branch(x) for branch in self.branches))


def context_hourglass(depth: int, channels: int, dilations: tuple[int, ...]) -> Hourglass:
    """An hourglass whose deepest centre Res is replaced by the multi-scale context block."""
    hourglass = Hourglass(depth, channels)
    node = hourglass
    while isinstance(node.inner, Hourglass):
        node = node.inner
    node.inner = MultiScaleContext(channels, dilations)
    return hourglass


class ChannelAttention(nn.Module):
    """Global channel attention: z * sigmoid(W2 ReLU(W1 GAP(z)))."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.sigmoid(self.mlp(z.mean(dim=(2, 3), keepdim=True)))


class SpatialAttention(nn.Module):
    """Global spatial attention: z * sigmoid(conv([mean_c z; max_c z]))."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([z.mean(dim=1, keepdim=True), z.amax(dim=1, keepdim=True)], dim=1)
        return z * torch.sigmoid(self.conv(pooled))


class CrossTaskFusion(nn.Module):
    """Multi-semantic RoI features -> 1x1 CBR -> channel then spatial attention; added to the landmark stream."""

    def __init__(self, channels: int, sources: int, reduction: int, kernel: int) -> None:
        super().__init__()
        self.reduce = CBR(sources * channels, channels, 1)
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel)

    def forward(self, stream: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        return stream + self.spatial(self.channel(self.reduce(torch.cat(features, dim=1))))


class RegionWiseHead(nn.Module):
    """Score maps through one branch per face region: shared 1x1 CBR, grouped 3x3 CBR, per-region 1x1 convs."""

    def __init__(self, channels: int, width: int, regions: dict[str, tuple[int, ...]]) -> None:
        super().__init__()
        groups = len(regions)
        self.width = width
        self.trunk = nn.Sequential(
            CBR(channels, groups * width, 1),
            nn.Conv2d(groups * width, groups * width, 3, padding=1, groups=groups, bias=False),
            nn.BatchNorm2d(groups * width),
            nn.ReLU(inplace=True),
        )
        self.heads = nn.ModuleList(nn.Conv2d(width, len(points), 1) for points in regions.values())
        order = [i for points in regions.values() for i in points]
        self.register_buffer("inverse", torch.argsort(torch.tensor(order)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.trunk(x).split(self.width, dim=1)
        return torch.cat([head(part) for head, part in zip(self.heads, parts, strict=True)], dim=1)[:, self.inverse]


class LocalisationStack(nn.Module):
    """One localisation hourglass: its K score maps and its merge into the dense skip sum."""

    def __init__(self, params: RDFNParams, regions: dict[str, tuple[int, ...]]) -> None:
        super().__init__()
        c = params.channels
        self.hourglass = context_hourglass(params.localisation_depth, c, params.dilations)
        self.features = nn.Sequential(Res(c, c), CBR(c, c, 1))
        self.head = RegionWiseHead(c, params.region_channels, regions)
        self.merge_features = CBR(c, c, 1)
        self.merge_scores = CBR(params.num_points, c, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(self.hourglass(x))
        scores = self.head(features)
        return scores, self.merge_features(features) + self.merge_scores(scores)


class DetectionHeads(nn.Module):
    """CenterNet-style heads on the detection hourglass: centre logits (1), offset (2), log-size (2)."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.trunk = CBR(channels, width, 3)
        self.centre = nn.Conv2d(width, 1, 1)
        self.offset = nn.Conv2d(width, 2, 1)
        self.log_size = nn.Conv2d(width, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.centre(h), self.offset(h), self.log_size(h)


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on (N, 1, H, W) logits, normalised by the number of peaks."""
    positive = (target >= 1.0).to(logits.dtype)
    prob = torch.sigmoid(logits)
    pos = positive * (1 - prob) ** FOCAL_ALPHA * F.logsigmoid(logits)
    neg = (1 - positive) * (1 - target) ** FOCAL_BETA * prob**FOCAL_ALPHA * F.logsigmoid(-logits)
    return -(pos + neg).sum() / positive.sum().clamp(min=1.0)


def jitter_regions(regions: torch.Tensor, jitter: float) -> torch.Tensor:
    """(N, 4) square regions with centres moved by U(+-jitter) of the side and sides scaled by 1 + U(+-jitter)."""
    side = regions[:, 2:3] - regions[:, 0:1]
    noise = (torch.rand(regions.shape[0], 3, device=regions.device, dtype=regions.dtype) * 2 - 1) * jitter
    centre = (regions[:, :2] + regions[:, 2:]) / 2 + noise[:, :2] * side
    return square_regions(centre, side * (1 + noise[:, 2:]), 1.0)


def gather_cells(maps: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """(N, C) values of (N, C, H, W) maps at (N, 2) integer (col, row) cells."""
    index = (cells[:, 1] * maps.shape[-1] + cells[:, 0])[:, None, None].expand(-1, maps.shape[1], 1)
    return maps.flatten(2).gather(2, index)[..., 0]


@register("rdfn", RDFNParams, "Region-aware Deep Feature-fused Network: face region detection + region-wise maps")
class RDFN(LandmarkModel):
    """Stem -> detection hourglass + region heads -> RoI features -> cross-task fusion -> localisation stacks.

    Input: RGB in [0, 1], (N, 3, S, S); ImageNet mean/std normalisation happens here (buffers), so callers and
    the ONNX graph agree.
    """

    def __init__(self, params: RDFNParams) -> None:
        super().__init__(params)
        c = params.channels
        self.normalize = ImageNetNormalize()
        self.stem = hourglass_stem(c)
        self.detection = Hourglass(params.detection_depth, c)
        self.detection_heads = DetectionHeads(c, params.head_channels)
        self.fusion = CrossTaskFusion(c, 3, params.attention_reduction, params.spatial_kernel)
        self.stacks = nn.ModuleList(LocalisationStack(params, self.codec.regions) for _ in range(params.stacks))
        init_normal(self)
        nn.init.constant_(self.detection_heads.centre.bias, -math.log((1 - CENTRE_PRIOR) / CENTRE_PRIOR))

    def forward(self, images: torch.Tensor, regions: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Detection maps (centre_logits, region_offset, region_log_size; N x c x H x H), the region used (N, 4),
        score_maps (N, K, R, R) of the last stack and score_maps_stacks (N, T, K, R, R).

        `regions` (N, 4) replaces the detected regions (teacher forcing); None uses the detector's.
        """
        p = self.params
        stem = self.stem(self.normalize(images))
        detected, context = hourglass_with_level(self.detection, stem, p.context_level)
        centre, offset, log_size = self.detection_heads(detected)
        if regions is None:
            region = self.codec.decode_region(centre.detach(), offset.detach(), log_size.detach()).float()
        else:
            region = regions.float()
        rois = [roi_align(f, region, p.roi_size, p.input_size) for f in (stem, detected, context)]
        skip_sum = self.fusion(rois[0], rois)
        scores = []
        for stack in self.stacks:
            score, merged = stack(skip_sum)
            scores.append(score)
            skip_sum = skip_sum + merged
        return {
            "centre_logits": centre,
            "region_offset": offset,
            "region_log_size": log_size,
            "region": region,
            "score_maps": scores[-1],
            "score_maps_stacks": torch.stack(scores, dim=1),
        }

    def training_inputs(self, targets: dict[str, torch.Tensor], epoch: int) -> dict[str, torch.Tensor]:
        """The jittered ground-truth regions during the teacher-forcing epochs, nothing afterwards."""
        if epoch >= self.params.teacher_epochs:
            return {}
        return {"regions": jitter_regions(targets["region"].float(), self.params.teacher_jitter)}

    def loss(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """detection (focal + L1 log-size + L1 offset at the true centre cell) + score_loss_weight * score_mse.

        score_mse: each stack's squared error against Gaussians rendered on the grid of the region the model used,
        weighted per point (inside the crop and on that grid), averaged over points and pixels, summed over stacks
        (§5: L_det + 10 * sum over stacks of MSE). Computed in float32 even under autocast.
        """
        cells = targets["region_cell"].long()
        centre = focal_loss(outputs["centre_logits"].float(), targets["centre_heatmap"].float())
        size = F.l1_loss(gather_cells(outputs["region_log_size"].float(), cells), targets["region_log_size"].float())
        offset = F.l1_loss(gather_cells(outputs["region_offset"].float(), cells), targets["region_offset"].float())
        region = outputs["region"].float()
        points = targets["points"].float()
        rendered = self.codec.render_score_maps(points, region)
        weight = targets["weight"].float() * self.codec.inside_region(points, region).float()
        sq_error = (outputs["score_maps_stacks"].float() - rendered.unsqueeze(1)) ** 2
        score_mse = (sq_error * weight[:, None, :, None, None]).mean(dim=(0, 2, 3, 4)).sum()
        total = centre + size + offset + self.params.score_loss_weight * score_mse
        parts = {"centre_focal": centre, "region_size_l1": size, "region_offset_l1": offset, "score_mse": score_mse}
        return total, {name: float(value.detach()) for name, value in parts.items()}
