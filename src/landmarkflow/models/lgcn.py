"""LGCN: local-context subnet, fixed 45 x 45 kernel blur, dilated global-context subnet (docs/models.md §4).

Everything runs at the input resolution (96 x 96 in the paper). Defaults are the paper's nf = 128 network
(4.19 M parameters). The constrained PCA shape fit of §4.4 is a post-step outside the graph (`lgcn_shape`).

Deviations and silences of the source, and what we do:
- Input: the paper reads 96 x 96 grayscale 0-255 images. Ours takes the project's RGB crops in [0, 1] and converts
  them inside the module (BT.601 luma, x 255), then applies the paper's x' = 0.1 (x / 128 - 1).
- Kernel: computed from the 3-Gaussian fit of §4.1 (within 0.008 of the released numbers; `codecs.lgcn`). The blur
  runs in its exact separable form as banded matrix products (`FixedBlur`): 6 S instead of k^2 multiply-adds per
  pixel, 0.72 instead of 2.5 GMAC at the paper size, and MatMul exports to ONNX.
- Dropout(0.1) follows the 22 conv layers of the two subnets; the 1 x 1 heads have none (the source lists
  dropout for "every layer of both subnets" and the heads belong to neither).
- BN momentum 0.1 (CNTK's time constant 0 has no PyTorch equivalent); eps 1e-5 as in the source.
- Loss: summed over the minibatch, as in the source, which also clips gradients element-wise at 0.1 per sample:
  the paper configs set `train.grad_clip_value` to 0.1 x the batch size.
- Decode adds a sub-pixel step to the paper's argmax (`codecs.lgcn`), exact on targets.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landmarkflow.codecs.lgcn_kernel import KERNEL_AMPLITUDES, kernel_profiles
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.models.lgcn_shape import ShapeModel, crop_frame_shapes, fit_shapes
from landmarkflow.models.params.lgcn import LGCNParams

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights, as OpenCV and PIL convert RGB to grayscale."""
ACTIVATION_GAIN = 0.1
BLUR_GAIN = 0.01
LOSS_GAIN = 0.05
WEIGHT_BASE = 0.1
WEIGHT_MEAN_MASS = 0.5
INIT_GAIN = math.sqrt(0.02)
"""CNTK he_normal(scale=sqrt(0.02)): std = 0.1414 * sqrt(2 / fan_in)."""


class ScaledReLU(nn.Module):
    """r(z) = 0.1 ReLU(z), the source's activation everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATION_GAIN * F.relu(x)


def conv_layer(in_ch: int, out_ch: int, kernel: int, dilation: int, dropout: float) -> nn.Sequential:
    """conv (bias, 'same' padding) -> BN -> r -> Dropout: every layer of both subnets."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation),
        nn.BatchNorm2d(out_ch),
        ScaledReLU(),
        nn.Dropout(dropout),
    )


class FixedBlur(nn.Module):
    """Depthwise 'same' (zero-padded) convolution with the fixed kernel K, not learned.

    K is a sum of 3 separable Gaussians, so K * X = sum_i a_i T_i X T_i^T with T_i the banded S x S matrix of the
    1-D profile i (the zero padding is the band's truncation at the borders): exact. Both passes multiply by a
    fixed matrix on the right, which PyTorch folds into one large matrix product each: an order of magnitude
    faster on CPU than a depthwise conv with a long kernel, and, for the blur alone, 2.4x (inference) and
    1.3-2.1x (forward and backward, float32 / bfloat16) faster than a left product by the T_i, which runs as
    thousands of small products, one per map. In the whole model that made inference 1.6x faster; the training
    step measured unchanged (the permute's copy and its backward take what the products gave back).
    """

    def __init__(self, size: int, kernel_size: int) -> None:
        super().__init__()
        radius = (kernel_size - 1) // 2
        profiles = kernel_profiles(kernel_size)
        offsets = np.arange(size)[None, :] - np.arange(size)[:, None]
        inside = np.abs(offsets) <= radius
        bands = np.where(inside[None], profiles[:, np.clip(offsets + radius, 0, kernel_size - 1)], 0.0)
        amplitudes = np.asarray(KERNEL_AMPLITUDES)[:, None, None]
        # rows: X @ [T_1^T T_2^T T_3^T] blurs along x for the 3 Gaussians at once, (y, i x). columns: with x first
        # and (i, y) last, . @ [a_1 T_1^T; a_2 T_2^T; a_3 T_3^T] blurs along y and sums the 3, (x, y).
        self.register_buffer("rows", torch.from_numpy(np.concatenate(bands, axis=0).T.astype(np.float32)), False)
        columns = (amplitudes * bands).transpose(0, 2, 1).reshape(-1, size)
        self.register_buffer("columns", torch.from_numpy(columns.astype(np.float32)), False)
        self.components = len(profiles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = range(x.dim() - 2)
        along_x = (x @ self.rows.to(x.dtype)).unflatten(-1, (self.components, x.shape[-1]))  # (..., y, i, x)
        by_column = along_x.permute(*lead, -1, -2, -3).flatten(-2)  # (..., x, i y)
        return (by_column @ self.columns.to(x.dtype)).transpose(-1, -2)


class LGCN(LandmarkModel):
    """Local subnet -> heads a, b -> o1 = 0.01 K*a, o_s = 0.01 K*b -> global subnet on [o1, o_s] -> o2 = that + o1.

    Input: RGB in [0, 1], (N, 3, S, S); the grayscale conversion and the paper's scaling happen here (buffer), so
    callers and the ONNX graph agree.
    """

    channels_last = False  # the blur's matrix products run on NCHW rows; NHWC measured 1.2x slower
    loss_sums_over_batch = True  # the paper's loss (below)
    calibrates_graph = False  # LGCN answers with its shape fit: `shape_model` hands the calibration to it

    def __init__(self, params: LGCNParams) -> None:
        super().__init__(params)
        nf, k, p = params.filters, params.num_points, params.dropout
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        widths = [1] + [nf] * (params.local_5x5_layers + params.local_3x3_layers)
        sizes = [5] * params.local_5x5_layers + [3] * params.local_3x3_layers
        self.local = nn.Sequential(*(conv_layer(widths[i], nf, s, 1, p) for i, s in enumerate(sizes)))
        self.top_main = nn.Conv2d(nf, k, 1)
        self.top_side = nn.Sequential(nn.Conv2d(nf, k, 1), nn.BatchNorm2d(k), ScaledReLU())
        self.blur = FixedBlur(params.input_size, params.kernel_size)
        global_widths = [2 * k] + [nf] * params.global_layers
        self.global_net = nn.Sequential(
            *(conv_layer(global_widths[i], nf, 3, params.global_dilation, p) for i in range(params.global_layers)),
            nn.Conv2d(nf, k, 1),
        )
        init_he_scaled(self)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """heatmap = o2 (N, K, S, S), the final output; heatmap_local = o1 (N, K, S, S), also supervised."""
        gray = (images * self.luma).sum(1, keepdim=True) * 255.0
        features = self.local(ACTIVATION_GAIN * (gray / 128.0 - 1.0))
        blurred = BLUR_GAIN * self.blur(torch.cat([self.top_main(features), self.top_side(features)], dim=1))
        local = blurred[:, : self.num_points]
        return {"heatmap": self.global_net(blurred) + local, "heatmap_local": local}

    def loss(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """0.05 sum_l w_l m_l sum_xy [(o1 - K*y_l)^2 + (o2 - K*y_l)^2], w_l = 0.1 + 0.5 mean(n) + n_l (§4.2).

        Summed over points and the minibatch, in float32 even under autocast.
        """
        target = targets["heatmap"].float()
        mass = targets["label_mass"].float()
        point_weight = (WEIGHT_BASE + WEIGHT_MEAN_MASS * mass.mean(dim=1, keepdim=True) + mass) * targets["weight"]
        local = ((outputs["heatmap_local"].float() - target) ** 2).sum(dim=(2, 3))
        final = ((outputs["heatmap"].float() - target) ** 2).sum(dim=(2, 3))
        local_loss = LOSS_GAIN * (point_weight * local).sum()
        final_loss = LOSS_GAIN * (point_weight * final).sum()
        total = local_loss + final_loss
        return total, {"local_sse": float(local_loss.detach()), "final_sse": float(final_loss.detach())}

    def shape_model(self, train_landmarks: np.ndarray, train_boxes: np.ndarray, box_scale: float) -> ShapeModel:
        """The PCA shape model of the train split in the evaluation crop's frame (docs/models.md §4.4), carrying this
        model's shape calibration for the fitted points."""
        shapes = crop_frame_shapes(train_landmarks, train_boxes, self.input_size, box_scale)
        correction = None if self.shape_calibration is None else self.shape_calibration.correction()
        return replace(ShapeModel.fit(shapes, self.input_size), correction=correction)

    def refined_predictor(
        self, train_landmarks: np.ndarray, train_boxes: np.ndarray, box_scale: float
    ) -> tuple[str, CropPredictor] | None:
        """The paper's constrained PCA shape fitting over the heatmaps, with `shape_model` of the train split."""
        device = next(self.parameters()).device
        shapes = self.shape_model(train_landmarks, train_boxes, box_scale)
        return "shape_fitted", shape_fitted_predictor(self, shapes, device)


def shape_fitted_predictor(
    model: LandmarkModel,
    shape_model: ShapeModel,
    device: torch.device | str = "cpu",
) -> CropPredictor:
    """A crops -> crop points function for `predict_records`: the final `heatmap` (LGCN's o2, the flip test's
    average with `flip_test`), as the exported graph outputs it, then `fit_shapes`."""
    model.eval()

    def run(crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            maps = model.predict_with_heatmaps(torch.from_numpy(crops).to(device))[1].float().cpu().numpy()
        return fit_shapes(maps, shape_model)

    return run


def init_he_scaled(module: nn.Module) -> None:
    """The source's init: conv weights He-normal x sqrt(0.02), biases 0; BN gamma 1, beta 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            with torch.no_grad():
                m.weight.mul_(INIT_GAIN)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
