"""Rolling `champion` back by hand: when the champion of the moment misbehaves where its gates could not look (a
camera, a population, a complaint), `champion` returns to the version that held it before, or to a named one.

It moves the alias under the model's alias lock, as promote does, so it never interleaves with a promotion. The
version it leaves keeps `promoted=true` and is tagged `rolled_back` with the reason: freshness then does not
retrain on the same data for it, and promote refuses it (a retried promote step would otherwise put it back,
its gate having been against the champion it is rolled back to). Only `--to` that version makes it champion again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlflow.tracking import MlflowClient

from landmarkflow.alias_lock import alias_lock
from landmarkflow.outages import tracking_step
from landmarkflow.registry import (
    CHAMPION,
    GATE_TAG,
    PROMOTED_TAG,
    ROLLED_BACK_TAG,
    VersionInfo,
    get_version,
    version_by_alias,
)
from landmarkflow.serving.kserve import Rollout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RolledBack:
    registered_name: str
    from_version: str
    to_version: str
    message: str


def previous_champion(name: str, champion: VersionInfo) -> VersionInfo:
    """The newest version below `champion` that was champion once and was not rolled back since."""
    found = MlflowClient().search_model_versions(f"name='{name}'")
    earlier = [
        VersionInfo.of(version)
        for version in found
        if int(version.version) < int(champion.version)
        and version.tags.get(PROMOTED_TAG) == "true"
        and ROLLED_BACK_TAG not in version.tags
    ]
    if not earlier:
        raise ValueError(
            f"{name}: no version before champion v{champion.version} was champion (or each was rolled back since); "
            "name the version to return to with --to"
        )
    return max(earlier, key=lambda info: int(info.version))


def _check_target(name: str, target: VersionInfo, champion: VersionInfo) -> None:
    if target.version == champion.version:
        raise ValueError(f"{name}: v{target.version} is champion already")
    missing = target.missing_tags()
    if missing or target.tags[GATE_TAG] != "passed":
        why = f"was registered without {', '.join(missing)}" if missing else f"has {GATE_TAG}={target.tags[GATE_TAG]}"
        raise ValueError(f"{name}: v{target.version} {why}; only a version that passed its gates can be champion")


@tracking_step
def roll_back(name: str, reason: str, to_version: str | None = None, rollout: Rollout | None = None) -> RolledBack:
    """Move `champion` of `name` from its version to `to_version` (None: the champion before it), tag the version
    it leaves with `reason`; then serve the restored champion on the cluster if asked."""
    if not reason.strip():
        raise ValueError("a rollback needs a reason: it is kept on the version rolled back, for whoever looks next")
    champion = version_by_alias(name, CHAMPION)
    if champion is None:
        raise ValueError(f"{name}: no champion to roll back (is the model's name right?)")
    with alias_lock(name, f"roll back {name} v{champion.version}", champion.run_id) as lock:
        current = version_by_alias(name, CHAMPION)  # again, under the lock: a promotion may have moved it
        if current is None or current.version != champion.version:
            raise ValueError(
                f"{name}: champion moved from v{champion.version} to "
                f"{'nothing' if current is None else f'v{current.version}'} while this rollback waited; look again"
            )
        target = get_version(name, to_version) if to_version else previous_champion(name, champion)
        _check_target(name, target, champion)
        lock.tag_version(champion.version, {ROLLED_BACK_TAG: reason})
        lock.move_alias(CHAMPION, target.version)
        if target.tags.get(PROMOTED_TAG) != "true":  # a version that passed its gates but was never promoted
            lock.tag_version(target.version, {PROMOTED_TAG: "true"})
        if ROLLED_BACK_TAG in target.tags:  # champion again, by name: no longer one to skip
            lock.untag_version(target.version, ROLLED_BACK_TAG)
    message = f"{name}@{CHAMPION} v{champion.version} -> v{target.version} (rolled back: {reason})"
    if rollout is not None:
        message += f"; {rollout.roll_out(name, target.version)}"
    log.info(message)
    return RolledBack(name, champion.version, target.version, message)
