"""What `landmarkflow models list` shows: every model at its paper and small configs, with its size and cost.

It reads configs, so it sits above `config`; the counting itself is `models.measure`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from landmarkflow.config import load_config
from landmarkflow.models.measure import build_on_meta, forward_gflops
from landmarkflow.models.zoo import get_entry

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


def describe(config_path: Path) -> ModelCard:
    """Build the config's model on the meta device and count its parameters and the FLOPs of reading one face: a
    forward pass at batch 1 on each of its crop views (`data.crop_views`)."""
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
        gflops=round(forward_gflops(model) * len(config.data.crop_views), 3),
        paper_source=reference.source if reference else None,
    )


def listed_configs(config_dir: Path, include_all: bool = False) -> list[Path]:
    """Paper configs (those with a `reference:` section) and the small synthetic ones; every config with
    `include_all`."""
    paths = sorted(Path(config_dir).glob("*.yaml"))
    if include_all:
        return paths
    return [p for p in paths if SMALL_CONFIG_MARK in p.stem or load_config(p).reference is not None]
