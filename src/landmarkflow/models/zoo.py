"""Every model by name: its params class (torch-free, for configs), where its module lives, and what it is.

Model modules are imported only when a model is built (lazy locations, as mmpose's registries keep them): a config
parses without torch, and building HIH loads neither LGCN's scipy shape fit nor anything else it does not use.
A new model is a params module, a model module and one line in `MODELS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from landmarkflow.models.params.base import ModelParams
from landmarkflow.models.params.dsat import DSATParams
from landmarkflow.models.params.hih import HIHParams
from landmarkflow.models.params.lgcn import LGCNParams
from landmarkflow.models.params.rdfn import RDFNParams

if TYPE_CHECKING:
    from landmarkflow.models.base import LandmarkModel


@dataclass(frozen=True)
class ModelEntry:
    """How to validate a model's config section, where its nn.Module class lives, and a one-line summary."""

    params: type[ModelParams]
    module: str
    class_name: str
    summary: str

    @property
    def name(self) -> str:
        """The config's `model.name`: the default of the params' `name` field, its one source."""
        return str(self.params.model_fields["name"].default)

    def model_class(self) -> type[LandmarkModel]:
        """The model's class, its module imported on first use."""
        return getattr(importlib.import_module(self.module), self.class_name)


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            DSATParams,
            "landmarkflow.models.dsat",
            "DSAT",
            "Dynamic Semantic Aggregation Transformer: DSA gate + channel transformer hourglasses",
        ),
        ModelEntry(
            HIHParams,
            "landmarkflow.models.hih",
            "HIH",
            "Heatmap In Heatmap: stacked hourglasses, integer + decimal heatmaps (KL soft labels)",
        ),
        ModelEntry(
            LGCNParams,
            "landmarkflow.models.lgcn",
            "LGCN",
            "Local-Global Context Network: full-resolution local net, fixed blur, dilated global net",
        ),
        ModelEntry(
            RDFNParams,
            "landmarkflow.models.rdfn",
            "RDFN",
            "Region-aware Deep Feature-fused Network: face region detection + region-wise maps",
        ),
    )
}


def model_names() -> list[str]:
    """Known model names, sorted."""
    return sorted(MODELS)


def get_entry(name: str) -> ModelEntry:
    """The entry for `name`, with a clear error listing the known models."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(model_names())}")
    return MODELS[name]


def parse_params(section: Mapping[str, Any]) -> ModelParams:
    """Validate a config's `model:` section with the named model's own params class."""
    if "name" not in section:
        raise ValueError("model section needs a 'name'")
    return get_entry(str(section["name"])).params.model_validate(dict(section))


def build_model(params: ModelParams | Mapping[str, Any]) -> LandmarkModel:
    """Build the module described by validated params (or a raw config section)."""
    if not isinstance(params, ModelParams):
        params = parse_params(params)
    return get_entry(params.name).model_class()(params)
