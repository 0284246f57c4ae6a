"""The promote step: move `champion` to the new version only when every gate passed; otherwise say why it stays."""

from __future__ import annotations

import logging

from landmarkflow.registry import CHAMPION, set_alias, tag_version
from landmarkflow.steps.results import GateResult, PromoteResult, RegisterResult

log = logging.getLogger(__name__)


def promote(registered: RegisterResult, gated: GateResult) -> PromoteResult:
    """Move `champion` to the new version only when every gate passed; otherwise say why it stays."""
    name = registered.registered_name
    if gated.passed:
        set_alias(name, CHAMPION, registered.version)
        message = f"{name}@{CHAMPION} -> v{registered.version} ({gated.reasons})"
        tag_version(name, registered.version, {"promoted": "true"})
        champion = registered.version
    else:
        champion = gated.champion_version
        where = f"stays at v{champion}" if champion else "is not set"
        message = f"{name}@{CHAMPION} {where}: v{registered.version} failed its gates ({gated.reasons})"
    log.info(message)
    return PromoteResult(name, champion, gated.passed, message)
