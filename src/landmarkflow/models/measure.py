"""A model's size and cost without memory or arithmetic: built and run on the meta device.

Parameter counts and FLOPs need shapes, not numbers, so even DSAT's 181 M parameters cost nothing to measure.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.params.base import ModelParams
from landmarkflow.models.zoo import build_model


def build_on_meta(params: ModelParams) -> LandmarkModel:
    """The model of `params` on the meta device: every shape, no memory, no arithmetic."""
    with torch.device("meta"):
        return build_model(params)


def forward_gflops(model: LandmarkModel) -> float:
    """GFLOPs of one eval-mode forward pass at batch 1 (as inference runs it), as torch.utils.flop_counter counts
    them: 2 per multiply-accumulate. Puts `model` in eval mode.

    The count needs shapes only, so a model from `build_on_meta` gives it at no cost in memory or arithmetic.
    """
    model.eval()
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, model.input_size, model.input_size, device=device))
    return counter.get_total_flops() / 1e9
