"""Rolling `champion` back by hand: when the champion of the moment misbehaves where its gates could not look (a
camera, a population, a complaint), `champion` returns to the newest earlier version that was champion and has not
been rolled back since, or to a version named.

It moves the alias under the model's alias lock, as promote does, so the two never interleave. The version it
leaves keeps `promoted=true` and is tagged `rolled_back` with the reason: freshness then does not retrain on the same
data for it, and promote refuses it (a retried promote step would otherwise put it back, its gate having been against
the champion it is rolled back to). Only a rollback `--to` that version makes it champion again.

The alias moves last, so a rollback cut short (a lost lease, a server gone) has moved nothing and runs again whole.
A rollout serves the champion before the lock is let go, as promote's does: a promotion and a rollback at once apply
their manifests in the order they moved the alias.
Named with `from_version`, a rollback that has already happened is recognised by its tag and reason, so running the
same command again (its rollout failed, its answer was lost) rolls nothing back a second time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from landmarkflow.alias_lock import alias_lock
from landmarkflow.outages import tracking_step
from landmarkflow.registry import (
    CHAMPION,
    PROMOTED_TAG,
    ROLLED_BACK_TAG,
    VersionInfo,
    get_version,
    not_found,
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


def version_number(name: str, version: str) -> str:
    """The number of version `version` of `name`, written "3" or "v3" (as messages write it)."""
    number = version.removeprefix("v")
    if not number.isdigit():
        raise ValueError(f"{name}: {version!r} is not a version number (3 or v3)")
    return number


def named_version(name: str, version: str) -> VersionInfo:
    """Version `version` of `name` ("3" or "v3"); ValueError naming it when there is none."""
    number = version_number(name, version)
    try:
        return get_version(name, number)
    except MlflowException as exc:
        if not_found(exc):
            raise ValueError(f"{name}: there is no v{number} (never registered, or deleted)") from exc
        raise


def previous_champion(name: str, champion: VersionInfo) -> VersionInfo:
    """The newest version below `champion` that was champion once and was not rolled back since."""
    found = MlflowClient().search_model_versions(f"name='{name}' and tags.{PROMOTED_TAG}='true'")
    earlier = [
        VersionInfo.of(version)
        for version in found
        if int(version.version) < int(champion.version) and ROLLED_BACK_TAG not in version.tags
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
    if refusal := target.champion_refusal():
        raise ValueError(f"{name} v{target.version}: {refusal}; only a version that passed its gates can be champion")


def _current_champion(name: str) -> VersionInfo:
    champion = version_by_alias(name, CHAMPION)
    if champion is None:
        raise ValueError(f"{name}: no champion to roll back (is the model's name right?)")
    return champion


def _done_already(name: str, reason: str, from_version: str, champion: VersionInfo) -> bool:
    """Whether `from_version`, no longer champion, was rolled back for `reason`: this very rollback, run again."""
    if champion.version == from_version:
        return False
    left = named_version(name, from_version)
    if left.tags.get(ROLLED_BACK_TAG) != reason:
        raise ValueError(f"{name}: champion is v{champion.version}, not v{from_version}: nothing rolled back")
    return True


@tracking_step
def roll_back(
    name: str,
    reason: str,
    to_version: str | None = None,
    rollout: Rollout | None = None,
    from_version: str | None = None,
) -> RolledBack:
    """Move `champion` of `name` from its version (which must be `from_version` when given) to `to_version` (None:
    the champion before it), tag the version it leaves with `reason`; then serve the champion on the cluster if asked.
    """
    if not reason.strip():
        raise ValueError("a rollback needs a reason: it is kept on the version rolled back, for whoever looks next")
    seen = _current_champion(name)
    left = version_number(name, from_version) if from_version else seen.version
    with alias_lock(name, f"roll back {name} v{left}", seen.run_id) as lock:
        champion = _current_champion(name)  # again, under the lock: a promotion may have moved it
        if from_version is not None and _done_already(name, reason, left, champion):
            target, done = champion, f"{name}@{CHAMPION} is v{champion.version} already (v{left} rolled back: {reason})"
        else:
            if champion.version != left:
                raise ValueError(
                    f"{name}: champion moved from v{left} to v{champion.version} while this rollback waited; "
                    "nothing rolled back: look again"
                )
            target = named_version(name, to_version) if to_version else previous_champion(name, champion)
            _check_target(name, target, champion)
            lock.tag_version(champion.version, {ROLLED_BACK_TAG: reason, PROMOTED_TAG: "true"})
            if target.tags.get(PROMOTED_TAG) != "true":  # a version that passed its gates but was never promoted
                lock.tag_version(target.version, {PROMOTED_TAG: "true"})
            if ROLLED_BACK_TAG in target.tags:  # champion again, by name: no longer one to skip
                lock.untag_version(target.version, ROLLED_BACK_TAG)
            lock.move_alias(CHAMPION, target.version)  # last: a rollback cut short before it moved nothing
            done = f"{name}@{CHAMPION} v{left} -> v{target.version} (rolled back: {reason})"
        if rollout is not None:  # under the lock, as promote serves its champion: the two apply in turn
            done += f"; {rollout.roll_out(name, target.version, lock.fencing_token)}"
    log.info(done)
    return RolledBack(name, left, target.version, done)
