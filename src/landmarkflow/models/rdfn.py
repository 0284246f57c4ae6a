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
- Teacher forcing as §5: for the first `teacher_epochs` epochs (every epoch if None) RoIAlign samples the
  ground-truth region, its centre shifted and its side scaled by up to `teacher_jitter` (uniform), handed to
  `forward` through `training_inputs`; afterwards, and always at inference, the detector's own region (detached:
  no gradient through box coordinates, as in Mask R-CNN). The loss renders each stack's targets on the grid of the
  region used. Points off that grid get weight 0.
- The region is the landmark box (the codec sees only points), squared and enlarged by `region_scale` 1.25 so
  that every landmark sits at least the reweighting window inside the grid.
- `detection_slack` (1 = none) widens the detector's region at decode: a region too small loses the points beyond
  its edge for good, one too large only coarsens the grid, and the teacher-forced localisation reads both.
- `region_views` (default (1,): none): in eval mode the localisation also reads the face on the detected region
  resized about its centre (the small synthetic config: x 0.91, 1 and 1.09), and the views' points are averaged. One
  region is a single draw of the detector's size, and the localisation's answer moves with it; the views average that
  out at the cost of the localisation run V times (the stem and the detector run once).
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

import torch
import torch.nn.functional as F
from torch import nn

from landmarkflow.codecs.rdfn import square_regions, view_regions
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.blocks import CBR, Hourglass, ImageNetNormalize, Res, hourglass_stem, init_normal
from landmarkflow.models.params.rdfn import RDFNParams

CENTRE_PRIOR = 0.1
"""CenterNet's initial centre probability: the heatmap starts near-uniform and low, not at 0.5 everywhere."""
FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0


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

        `regions` (N, 4) replaces the detected regions (teacher forcing); None uses the detector's. In eval mode with
        `region_views` other than (1,), each face is read on V regions, the detected one's side x each view, and
        region, score_maps and score_maps_stacks gain a view axis after N (the codec's decode averages the views).
        """
        p = self.params
        stem = self.stem(self.normalize(images))
        detected, context = hourglass_with_level(self.detection, stem, p.context_level)
        centre, offset, log_size = self.detection_heads(detected)
        features: tuple[torch.Tensor, ...] = (stem, detected, context)
        if regions is not None:
            region = regions.float()
        else:
            region = self.codec.decode_region(centre.detach(), offset.detach(), log_size.detach()).float()
            if not self.training and p.region_views != (1.0,):
                region = view_regions(region, p.region_views)  # (N, V, 4): face-major, as the features repeat
                features = tuple(f.repeat_interleave(len(p.region_views), dim=0) for f in features)
        maps = self._localise(features, region.reshape(-1, 4)).unflatten(0, region.shape[:-1])
        return {
            "centre_logits": centre,
            "region_offset": offset,
            "region_log_size": log_size,
            "region": region,
            "score_maps": maps[..., -1, :, :, :],  # the last stack's
            "score_maps_stacks": maps,
        }

    def _localise(self, features: tuple[torch.Tensor, ...], region: torch.Tensor) -> torch.Tensor:
        """(M, T, K, R, R) score maps of every stack on the (M, 4) regions of M feature maps (stem, detection and
        its context level)."""
        p = self.params
        rois = [roi_align(f, region, p.roi_size, p.input_size) for f in features]
        skip_sum = self.fusion(rois[0], rois)
        scores = []
        for stack in self.stacks:
            score, merged = stack(skip_sum)
            scores.append(score)
            skip_sum = skip_sum + merged
        return torch.stack(scores, dim=1)

    def training_inputs(self, targets: dict[str, torch.Tensor], epoch: int) -> dict[str, torch.Tensor]:
        """The jittered ground-truth regions during the teacher-forcing epochs, nothing afterwards."""
        if self.params.teacher_epochs is not None and epoch >= self.params.teacher_epochs:
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
        if outputs["region"].ndim != 2:
            raise ValueError(
                f"RDFN loss needs one region per face (train mode, or teacher regions); got regions of shape "
                f"{tuple(outputs['region'].shape)}, an eval-mode read on region_views"
            )
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
