"""The pipeline's steps as plain functions: ingest, check_freshness, validate, train, evaluate, export, gate,
register, promote.

The CLI, the Kubeflow components and the tests call these same functions as `steps.<name>`. Each returns a
result object that can be saved as JSON, which is how one step hands its outcome to the next across process
(or pod) boundaries.

Each step lives in its own module and is imported on first use (PEP 562), so that a component process pays
only for what its step needs: torch, MLflow, matplotlib and onnx each take a second or more to import. The
modules are named for the activity (`training`), so that none shadows its step function (`train`) as an
attribute of this package.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES_BY_MODULE: dict[str, tuple[str, ...]] = {
    "results": (
        "StepResult",
        "IngestResult",
        "FreshnessResult",
        "ValidateResult",
        "TrainResult",
        "EvalResult",
        "ExportResult",
        "GateResult",
        "RegisterResult",
        "PromoteResult",
        "require_remote",
        "require_validated",
    ),
    "ingesting": ("ingest", "DataRevision"),
    "checking_freshness": ("check_freshness",),
    "validating": ("validate",),
    "training": ("train", "trainjob"),
    "evaluating": ("evaluate",),
    "exporting": ("export", "deploy_info", "onnx_predictor"),
    "gating": ("gate",),
    "registering": ("register",),
    "promoting": ("promote",),
    "materialising": ("materialise_data", "materialise_folder"),
}
_MODULE_OF = {name: module for module, names in _NAMES_BY_MODULE.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """Import the module holding `name` on first use; later lookups find it in this module's globals."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
