"""What `landmarkflow models list` shows: every model at its paper and small configs, with its size and cost.

Models are built and run on the meta device: parameter counts and FLOPs need shapes, not numbers, so even
DSAT's 181 M parameters cost no memory and no arithmetic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from landmarkflow.config import load_config
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.params.base import ModelParams
from landmarkflow.models.zoo import build_model, get_entry

SMALL_CONFIG_MARK = "_synthetic_tiny"


@dataclass(frozen=True)
class ModelCard:
    """One model at one config: its size as we build it, as the authors count it, and what the paper says."""

    name: str
    config: str
    summary: str
    num_points: int
    input_size: int
    params: int
    reference_params: int
    paper_params: int | None
    gflops: float
    paper_source: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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


def describe(config_path: Path) -> ModelCard:
    """Build the config's model on the meta device and count its parameters and forward FLOPs (batch 1)."""
    config = load_config(config_path)
    model = build_on_meta(config.model)
    reference = config.reference
    return ModelCard(
        name=config.model.name,
        config=str(config_path),
        summary=get_entry(config.model.name).summary,
        num_points=model.num_points,
        input_size=model.input_size,
        params=sum(p.numel() for p in model.parameters()),
        reference_params=model.reference_param_count(),
        paper_params=round(reference.params_m * 1e6) if reference and reference.params_m else None,
        gflops=round(forward_gflops(model), 3),
        paper_source=reference.source if reference else None,
    )


def listed_configs(config_dir: Path, include_all: bool = False) -> list[Path]:
    """Paper configs (those with a `reference:` section) and the small synthetic ones; every config with
    `include_all`."""
    paths = sorted(Path(config_dir).glob("*.yaml"))
    if include_all:
        return paths
    return [p for p in paths if SMALL_CONFIG_MARK in p.stem or load_config(p).reference is not None]
