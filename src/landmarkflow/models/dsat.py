"""DSAT: Dynamic Semantic Aggregation Transformer (Wan et al., Pattern Recognition 2024; docs/models.md §2).

stem -> DSA gate -> N DSAT hourglasses, each with a cross-scale channel transformer (DSS) on its down path ->
head of landmark + boundary heatmaps. The defaults are the released code's 300W network: 4 hourglasses of 256
channels at 64x64, 128x128 input and maps, 181.2 M parameters.

Deviations from the released code (GERMINO-LiuHe/DSAT), each for a reason:
- Input: ImageNet mean/std normalisation inside the module (the project's convention: every model takes RGB in
  [0, 1] and the ONNX graph carries its normalisation). The paper feeds RGB/255 as is; conv1 has a bias and is
  followed by BatchNorm, so a fixed affine input map changes neither the function class nor the count.
- Size knobs the paper fixes, for small configs only (defaults are the paper's): hourglass count, width
  (`channels`; stem widths are channels/4 and /2), `hourglass_depth` (the number of DSS scales; patch sizes
  2^(depth-1) .. 1, KV size depth x channels), transformer layers/heads/MLP ratio, head width, `stem_stride` 2
  (conv1 with stride 2, for a cheaper full-resolution stem), and heatmaps at the hourglass resolution (no head
  upsampling) instead of twice it.
- DSA's straight-through hard gate is 1[s > 0] + g_s - stop_grad(g_s) (Kaiser & Bengio's form): its backward
  pass is the saturating sigmoid's, 1.2 sigmoid'(s) where unsaturated. §2.1 says only that the gradients of
  sigmoid(s) and g_s are carried; this is the one formula that does both.
- The boundary channels are trained but, as in the paper's flip test, not decoded; the flip test (`predict`)
  averages only the landmark channels.
- Parameters use PyTorch's default init (the code sets none), except the transformer MLPs (xavier weights,
  N(0, 1e-6) biases), as the channel transformer the code builds on does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.blocks import ImageNetNormalize
from landmarkflow.models.params.dsat import DSATParams

LAYER_NORM_EPS = 1e-6
SATURATION = 1.2
"""Saturating sigmoid of improved semantic hashing: clip(1.2 sigmoid(s) - 0.1, 0, 1)."""


def _pre_act(in_ch: int, out_ch: int, kernel: int) -> list[nn.Module]:
    """BN -> ReLU -> conv k x k without bias ('same' padding)."""
    return [nn.BatchNorm2d(in_ch), nn.ReLU(), nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False)]


class Bottleneck(nn.Module):
    """The paper's CB(i, o): pre-activation 1x1 (o/2) -> 3x3 (o/2) -> 1x1 (o); skip BN-ReLU-1x1 when i != o."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.body = nn.Sequential(*_pre_act(in_ch, mid, 1), *_pre_act(mid, mid, 3), *_pre_act(mid, out_ch, 1))
        self.skip = nn.Sequential(*_pre_act(in_ch, out_ch, 1)) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def upsample(channels: int) -> nn.ConvTranspose2d:
    """The paper's Up(c): transposed conv, kernel 4, stride 2, padding 1 (doubles the side exactly)."""
    return nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)


def semantic_hash(scores: torch.Tensor, hard: bool) -> torch.Tensor:
    """Improved semantic hashing (Kaiser & Bengio) of (N, C) noisy scores -> gate in [0, 1].

    soft: the saturating sigmoid clip(1.2 sigmoid(s) - 0.1, 0, 1). hard: 1[s > 0] forward with the soft gate's
    gradient backward (straight-through), so training can learn through binary codes.
    """
    soft = (SATURATION * torch.sigmoid(scores) - (SATURATION - 1) / 2).clamp(0.0, 1.0)
    if not hard:
        return soft
    return (scores > 0).to(scores.dtype) + soft - soft.detach()


class SemanticGate(nn.Module):
    """DSA: X = X0 * (1 + g), g = H(GAP(X0)) per channel; no parameters (the code's FC layers are disabled).

    Train: Gaussian noise N(0, 1) on the pooled scores, and one coin per forward pass picks the soft gate or the
    straight-through hard gate (probability 1/2 each). Eval: no noise, hard gate, so g is binary.
    """

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) gate of (N, C, H, W) features."""
        scores = x.mean(dim=(2, 3))
        if not self.training:
            return (scores > 0).to(scores.dtype)
        noisy = scores + torch.randn_like(scores)
        return semantic_hash(noisy, hard=bool(torch.rand(()) < 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1.0 + self.mask(x))[:, :, None, None]


class ChannelAttention(nn.Module):
    """Multi-head channel cross-attention: each scale's channels attend to the concatenated channels of all scales.

    Per head h and scale i: A = softmax(IN(Q_i^T K / sqrt(KV))) of shape (C x KV), context = mean_h A V^T.
    One bias-free linear per scale (and one for K, one for V) holds all heads' projections side by side.
    """

    def __init__(self, channels: int, scales: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.kv_size = channels * scales
        self.queries = nn.ModuleList(nn.Linear(channels, heads * channels, bias=False) for _ in range(scales))
        self.key = nn.Linear(self.kv_size, heads * self.kv_size, bias=False)
        self.value = nn.Linear(self.kv_size, heads * self.kv_size, bias=False)
        self.outputs = nn.ModuleList(nn.Linear(channels, channels, bias=False) for _ in range(scales))
        self.norm = nn.InstanceNorm2d(heads)
        self.attention_dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, heads * D) -> (N, heads, T, D)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, tokens: list[torch.Tensor], joint: torch.Tensor) -> list[torch.Tensor]:
        keys, values = self._split(self.key(joint)), self._split(self.value(joint))
        out = []
        for query, output, x in zip(self.queries, self.outputs, tokens, strict=True):
            scores = self._split(query(x)).transpose(-1, -2) @ keys / math.sqrt(self.kv_size)
            probs = self.attention_dropout(torch.softmax(self.norm(scores), dim=-1))
            context = (probs @ values.transpose(-1, -2)).mean(dim=1).transpose(1, 2)
            out.append(self.output_dropout(output(context)))
        return out


class MLP(nn.Module):
    """Linear -> GELU -> Linear, xavier weights and N(0, 1e-6) biases (the channel transformer's init)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        hidden = ratio * channels
        self.body = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))
        for layer in (self.body[0], self.body[2]):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TransformerLayer(nn.Module):
    """Pre-norm channel cross-attention, then a pre-norm MLP per scale, both residual."""

    def __init__(self, channels: int, scales: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.attention_norms = nn.ModuleList(nn.LayerNorm(channels, eps=LAYER_NORM_EPS) for _ in range(scales))
        self.joint_norm = nn.LayerNorm(channels * scales, eps=LAYER_NORM_EPS)
        self.attention = ChannelAttention(channels, scales, heads, dropout)
        self.mlp_norms = nn.ModuleList(nn.LayerNorm(channels, eps=LAYER_NORM_EPS) for _ in range(scales))
        self.mlps = nn.ModuleList(MLP(channels, mlp_ratio) for _ in range(scales))

    def forward(self, tokens: list[torch.Tensor]) -> list[torch.Tensor]:
        joint = self.joint_norm(torch.cat(tokens, dim=-1))
        normed = [norm(x) for norm, x in zip(self.attention_norms, tokens, strict=True)]
        tokens = [x + a for x, a in zip(tokens, self.attention(normed, joint), strict=True)]
        return [x + mlp(norm(x)) for x, mlp, norm in zip(tokens, self.mlps, self.mlp_norms, strict=True)]


class ChannelTransformer(nn.Module):
    """DSS: fuse the hourglass's down-path features across scales by channel attention (docs/models.md §2.1).

    Scale i (side s / 2^i) is cut into patches of 2^(depth - i), so every scale yields the same (s / 2^depth)^2
    tokens of `channels` dims; after the layers each scale is reshaped, nearest-upsampled back, passed through
    conv1x1-BN-ReLU and added to its input.
    """

    def __init__(self, channels: int, depth: int, tokens: int, params: DSATParams) -> None:
        super().__init__()
        patches = [2 ** (depth - 1 - i) for i in range(depth)]
        self.patches = patches
        self.embeddings = nn.ModuleList(nn.Conv2d(channels, channels, p, stride=p) for p in patches)
        self.positions = nn.Parameter(torch.zeros(depth, tokens, channels))
        self.embedding_dropout = nn.Dropout(params.transformer_dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(channels, depth, params.transformer_heads, params.mlp_ratio, params.transformer_dropout)
            for _ in range(params.transformer_layers)
        )
        self.final_norms = nn.ModuleList(nn.LayerNorm(channels, eps=LAYER_NORM_EPS) for _ in range(depth))
        self.reconstruct = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU()) for _ in range(depth)
        )

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        tokens = [
            self.embedding_dropout(embed(x).flatten(2).transpose(1, 2) + position)
            for embed, x, position in zip(self.embeddings, features, self.positions, strict=True)
        ]
        for layer in self.layers:
            tokens = layer(tokens)
        out = []
        for norm, rebuild, patch, x, t in zip(
            self.final_norms, self.reconstruct, self.patches, features, tokens, strict=True
        ):
            grid = norm(t).transpose(1, 2).unflatten(2, (x.shape[2] // patch, x.shape[3] // patch))
            out.append(x + rebuild(F.interpolate(grid, scale_factor=float(patch), mode="nearest")))
        return out


class DSATHourglass(nn.Module):
    """One DSAT hourglass (docs/models.md §2.1): avg-pool down path, DSS on the down features, one shared Up(c).

    skip_i = CB(down_{i-1}); down_i = CB(avgpool(down_{i-1})); t = DSS(down_1..d);
    y_d = CB(CB(down_d) + t_d); y_i = CB(Up(y_{i+1}) + skip_{i+1} + t_i); out = Up(y_1) + skip_1.
    """

    def __init__(self, channels: int, depth: int, side: int, params: DSATParams) -> None:
        super().__init__()
        self.skip_blocks = nn.ModuleList(Bottleneck(channels, channels) for _ in range(depth))
        self.down_blocks = nn.ModuleList(Bottleneck(channels, channels) for _ in range(depth))
        self.bottom = Bottleneck(channels, channels)
        self.merge_blocks = nn.ModuleList(Bottleneck(channels, channels) for _ in range(depth))
        self.transformer = ChannelTransformer(channels, depth, (side // 2**depth) ** 2, params)
        self.up = upsample(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, downs = [], []
        for skip, down in zip(self.skip_blocks, self.down_blocks, strict=True):
            skips.append(skip(x))
            x = down(F.avg_pool2d(x, 2))
            downs.append(x)
        fused = self.transformer(downs)
        y = self.merge_blocks[-1](self.bottom(downs[-1]) + fused[-1])
        for level in reversed(range(len(downs) - 1)):
            y = self.merge_blocks[level](self.up(y) + skips[level + 1] + fused[level])
        return self.up(y) + skips[0]


class DSAT(LandmarkModel):
    """conv1 -> CB(c/4, c/2) -> maxpool -> CB(c/2, c) -> DSA gate -> hourglasses -> CB(c, head) [-> Up] -> conv3x3.

    Output channels: the K landmark heatmaps, then one per boundary of the layout (13 for 68 points).
    Input: RGB in [0, 1], (N, 3, S, S); ImageNet normalisation happens here (buffers), so callers and the ONNX
    graph agree.
    """

    def __init__(self, params: DSATParams) -> None:
        super().__init__(params)
        c, side = params.channels, params.hourglass_side
        self.normalize = ImageNetNormalize()
        self.stem = nn.Sequential(
            nn.Conv2d(3, c // 4, 3, stride=params.stem_stride, padding=1),
            Bottleneck(c // 4, c // 2),
            nn.MaxPool2d(2),
            Bottleneck(c // 2, c),
        )
        self.gate = SemanticGate()
        self.hourglasses = nn.Sequential(
            *(DSATHourglass(c, params.hourglass_depth, side, params) for _ in range(params.hourglasses))
        )
        head_up = [upsample(params.head_channels)] if params.heatmap_size == 2 * side else []
        self.head = nn.Sequential(
            Bottleneck(c, params.head_channels),
            *head_up,
            nn.Conv2d(params.head_channels, self.num_points + self.codec.num_boundaries, 3, padding=1, bias=False),
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """heatmap (N, K, H, H) and boundary (N, B, H, H)."""
        x = self.gate(self.stem(self.normalize(images)))
        maps = self.head(self.hourglasses(x))
        return {"heatmap": maps[:, : self.num_points], "boundary": maps[:, self.num_points :]}

    def loss(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE over every landmark and boundary pixel (docs/models.md §2.2), in float32 even under autocast.

        Each map's squared error is weighted by its target weight (0 for a point outside the crop or a boundary
        with an unknown point) and the sum is divided by the count of all map pixels, so with all weights 1 it is
        the paper's MSELoss over the K + B channels.
        """
        landmark = (outputs["heatmap"].float() - targets["heatmap"].float()) ** 2
        boundary = (outputs["boundary"].float() - targets["boundary"].float()) ** 2
        landmark = landmark * targets["weight"].float()[:, :, None, None]
        boundary = boundary * targets["boundary_weight"].float()[:, :, None, None]
        total = (landmark.sum() + boundary.sum()) / (landmark.numel() + boundary.numel())
        return total, {"landmark_mse": float(landmark.mean().detach()), "boundary_mse": float(boundary.mean().detach())}

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """(N, K, 2) crop pixels. With `flip_test` (docs/models.md §2.4): run the image and its mirror in one batch,
        mirror the second result's landmark maps back (flip W, swap pairs), average, then decode (the paper averages
        heatmaps, not the base's landmarks)."""
        return self.predict_with_heatmaps(images)[0]

    def predict_with_heatmaps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`predict`'s landmarks and the landmark heatmaps they are decoded from (averaged with the mirror's)."""
        if not self.params.flip_test:
            return super().predict_with_heatmaps(images)
        maps = self.mirror_averaged_maps(self(self.with_mirrors(images))["heatmap"])
        return self.calibrated(self.codec.decode({"heatmap": maps})), maps
