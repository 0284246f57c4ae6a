"""Which registered version a server answers with: an alias is resolved once, at start-up, so every worker (and
every answer) comes from the same version even if the alias moves while it runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

REGISTRY_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+|latest))")
"""A registered model's reference: by alias, by version, or its newest version (`latest`, as MLflow reads it)."""


@dataclass(frozen=True)
class ServedModel:
    """`name` and `version` as /v1/model reports them; `uri` is what the Predictor loads (an alias pinned to its
    version). A model file or run artifact has no version: its name is the reference itself."""

    name: str
    version: str | None
    uri: str


def pin_model(ref: str) -> ServedModel:
    """`models:/<name>@<alias>` and `models:/<name>/latest` -> the version they name now (ValueError when there is
    none); other references unchanged."""
    match = REGISTRY_URI.fullmatch(ref)
    if match is None:
        return ServedModel(ref, None, ref)
    name, alias, version = match["name"], match["alias"], match["version"]
    if alias is not None or version == "latest":
        import mlflow

        from landmarkflow.registry import latest_version, version_by_alias
        from landmarkflow.tracking import setup_tracking

        setup_tracking(must_exist=True)
        found = latest_version(name) if alias is None else version_by_alias(name, alias)
        if found is None and (alias is None or latest_version(name) is None):  # no model to look in at all
            raise ValueError(f"{ref}: no registered model {name!r} with a version in {mlflow.get_registry_uri()}")
        if found is None:
            raise ValueError(f"{ref}: registered model {name!r} has no alias {alias!r}")
        version = found.version
    return ServedModel(name, str(version), f"models:/{name}/{version}")
