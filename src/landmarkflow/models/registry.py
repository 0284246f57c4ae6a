"""Model registry: name -> (params class, builder). One table, no if/elif factories."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.params.base import ModelParams


@dataclass(frozen=True)
class ModelEntry:
    """How to validate a model's config section and build the module."""

    params: type[ModelParams]
    build: Callable[[Any], LandmarkModel]
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}
_discovered = False  # True once every model module has been imported


def register(name: str, params: type[ModelParams], summary: str) -> Callable:
    """Class decorator: make a LandmarkModel subclass buildable by `name` from its params."""

    def wrap(cls: type[LandmarkModel]) -> type[LandmarkModel]:
        _REGISTRY[name] = ModelEntry(params=params, build=cls, summary=summary)
        return cls

    return wrap


def _entries() -> dict[str, ModelEntry]:
    """Import every module of this package once, which runs their @register decorators: a new model is a new
    file, with no list to keep in step. (A test importing one model module directly must not stop the others
    from being found, hence a flag rather than an emptiness check.)"""
    global _discovered
    if not _discovered:
        import landmarkflow.models as package

        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
        _discovered = True
    return _REGISTRY


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_entries())


def get_entry(name: str) -> ModelEntry:
    """The entry for `name`, with a clear error listing the known models."""
    entries = _entries()
    if name not in entries:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(sorted(entries))}")
    return entries[name]


def parse_params(section: Mapping[str, Any]) -> ModelParams:
    """Validate a config's `model:` section with the named model's own params class."""
    if "name" not in section:
        raise ValueError("model section needs a 'name'")
    return get_entry(str(section["name"])).params.model_validate(dict(section))


def build_model(params: ModelParams | Mapping[str, Any]) -> LandmarkModel:
    """Build the module described by validated params (or a raw config section)."""
    if not isinstance(params, ModelParams):
        params = parse_params(params)
    return get_entry(params.name).build(params)
