"""HIH: stacked hourglasses with an integer heatmap per stack and a decimal heatmap head (docs/models.md §3).

HIH_T / HIH_S / HIH_B are `stacks` = 1 / 2 / 4 of the same network (channels 256, input 256, maps 64 and 8).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.blocks import CBR, DownBlock, Hourglass, ImageNetNormalize, Res, hourglass_stem, init_normal
from landmarkflow.models.params.hih import HIHParams


class DecimalHead(nn.Module):
    """CBR1x1 -> maxpool(3, s2, no pad) [H -> H/2 - 1] -> (log2(H/D) - 1) DownBlocks [-> D] -> CBR1x1 -> conv1x1."""

    def __init__(self, in_ch: int, channels: int, num_points: int, heatmap_size: int, decimal_size: int) -> None:
        super().__init__()
        blocks = round(math.log2(heatmap_size // decimal_size)) - 1
        self.body = nn.Sequential(
            CBR(in_ch, channels, 1),
            nn.MaxPool2d(3, 2),
            *(DownBlock(channels) for _ in range(blocks)),
            CBR(channels, channels, 1),
            nn.Conv2d(channels, num_points, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Stack(nn.Module):
    """One hourglass stack: its integer heatmap and the merged features for the next stack (or the head)."""

    def __init__(self, channels: int, depth: int, num_points: int) -> None:
        super().__init__()
        self.hourglass = Hourglass(depth, channels)
        self.features = nn.Sequential(Res(channels, channels), CBR(channels, channels, 1))
        self.heatmap_head = nn.Conv2d(channels, num_points, 1)
        self.merge_features = CBR(channels, channels, 1)
        self.merge_heatmap = CBR(num_points, channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(self.hourglass(x))
        heatmap = self.heatmap_head(features)
        return heatmap, x + self.merge_features(features) + self.merge_heatmap(heatmap)


class HIH(LandmarkModel):
    """Stem -> S hourglass stacks (intermediate supervision) -> decimal head on the final merged features.

    Input: RGB in [0, 1], (N, 3, S, S); ImageNet mean/std normalisation happens here (buffers), so callers and
    the ONNX graph agree.
    """

    def __init__(self, params: HIHParams) -> None:
        super().__init__(params)
        c = params.channels
        self.normalize = ImageNetNormalize()
        self.stem = hourglass_stem(c)
        self.stacks = nn.ModuleList(Stack(c, params.hourglass_depth, params.num_points) for _ in range(params.stacks))
        self.decimal_head = DecimalHead(
            c, params.decimal_channels, params.num_points, params.heatmap_size, params.decimal_size
        )
        init_normal(self)

    def reference_param_count(self) -> int:
        """Ours plus the 1x1 conv + BN skip the released code builds, and never runs, in every equal-width Res
        (we do not build it: DDP rejects parameters that never get a gradient)."""
        never_run = sum(
            res.body[2][0].out_channels ** 2 + 2 * res.body[2][0].out_channels
            for res in self.modules()
            if isinstance(res, Res) and isinstance(res.skip, nn.Identity)
        )
        return super().reference_param_count() + never_run

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """int_heatmap (N, K, H, H) of the last stack, int_heatmap_stacks (N, S, K, H, H), dec_logits (N, K, D, D)."""
        x = self.stem(self.normalize(images))
        heatmaps = []
        for stack in self.stacks:
            heatmap, x = stack(x)
            heatmaps.append(heatmap)
        return {
            "int_heatmap": heatmaps[-1],
            "int_heatmap_stacks": torch.stack(heatmaps, dim=1),
            "dec_logits": self.decimal_head(x),
        }

    def loss(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """int_mse + dec_loss_weight * dec_kl (docs/models.md §3.3), in float32 even under autocast.

        int_mse: squared error of every stack's integer heatmap, weighted per point by `weight`, averaged over all
        elements (stacks, points, pixels), as the paper's MSELoss. dec_kl: KL(softmax(target) || softmax(logits))
        over each point's D*D bins, `reduction='mean'` over every element as in the paper (not 'batchmean'), with
        the same per-point weight; with all weights 1 both terms equal the paper's.
        """
        weight = targets["weight"].float()
        stacks = outputs["int_heatmap_stacks"].float()
        sq_error = (stacks - targets["int_heatmap"].float().unsqueeze(1)) ** 2
        int_mse = (sq_error * weight[:, None, :, None, None]).mean()
        log_p = F.log_softmax(outputs["dec_logits"].float().flatten(2), dim=-1)
        q = F.softmax(targets["dec_heatmap"].float().flatten(2), dim=-1)
        dec_kl = (F.kl_div(log_p, q, reduction="none") * weight[:, :, None]).mean()
        total = int_mse + self.params.dec_loss_weight * dec_kl
        return total, {"int_mse": float(int_mse.detach()), "dec_kl": float(dec_kl.detach())}
