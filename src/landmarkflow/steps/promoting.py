"""The promote step: move `champion` to the new version only when every gate passed, and only if it still beats
the champion of the moment; otherwise say why it stays.

The gate compared the candidate with the champion of its time; another run may have promoted a version since.
So the promotion happens under the model's alias lock: there it reads the champion again and, if it is no longer
the one the gate saw, applies the gate's champion check to the new one. Two runs at once thus end as if their
gates and promotions had run one after the other: `champion` never moves to a version worse than the one it
leaves (beyond the gate's tolerance). A version rolled back by hand (landmarkflow.rollback) is not promoted
again; only a rollback `--to` it makes it champion.
"""

from __future__ import annotations

import logging

from landmarkflow.alias_lock import alias_lock
from landmarkflow.evaluation.gates import champion_check
from landmarkflow.outages import tracking_step
from landmarkflow.registry import (
    CHAMPION,
    PROMOTED_TAG,
    ROLLED_BACK_TAG,
    VersionInfo,
    get_version,
    tag_version,
    version_by_alias,
)
from landmarkflow.serving.kserve import Rollout
from landmarkflow.steps.results import GateResult, PromoteResult, RegisterResult

log = logging.getLogger(__name__)


@tracking_step
def promote(registered: RegisterResult, gated: GateResult, rollout: Rollout | None = None) -> PromoteResult:
    """Move `champion` to the new version when every gate passed and it still beats the champion, then roll it out
    if asked; otherwise say why it stays."""
    name, version = registered.registered_name, registered.version
    candidate = get_version(name, version)
    if candidate.run_id != gated.run_id:  # a workdir's register.json of an earlier training, gated again since
        raise ValueError(
            f"{name} v{version} was registered from run {candidate.run_id}, but the gate decided on run "
            f"{gated.run_id}: run register again for it first"
        )
    if not gated.passed:
        current = version_by_alias(name, CHAMPION)  # now: another run may have promoted since this gate
        champion = current.version if current else None
        where = f"stays at v{champion}" if champion else "is not set"
        message = f"{name}@{CHAMPION} {where}: v{version} failed its gates ({gated.reasons})"
        log.info(message)
        return PromoteResult(name, champion, False, message)
    with alias_lock(name, f"promote {name} v{version} (run {gated.run_id})", gated.run_id) as lock:
        candidate = get_version(name, version)  # again: the run may have been gated and registered again meanwhile
        if refusal := candidate.champion_refusal():
            raise ValueError(f"{name} v{version}: {refusal}")
        champion = version_by_alias(name, CHAMPION)
        blocker = _why_not(candidate, champion, gated)
        served = None
        if blocker is None:
            lock.move_alias(CHAMPION, version)
            tag_version(name, version, {PROMOTED_TAG: "true"})  # before the rollout, which may fail
            if rollout is not None:  # under the lock: a later promotion or rollback applies its manifest after this
                served = rollout.roll_out(name, version, lock.fencing_token)
    if blocker is not None:
        stays = champion.version if champion else None
        message = f"{name}@{CHAMPION} {f'stays at v{stays}' if stays else 'is not set'}: {blocker}"
        log.info(message)
        return PromoteResult(name, stays, False, message)
    message = f"{name}@{CHAMPION} -> v{version} ({gated.reasons})"
    if champion is not None and champion.version not in (gated.champion_version, version):
        message += f"; still not worse than v{champion.version}, promoted after the gate"
    if served is not None:
        message += f"; {served}"
    log.info(message)
    return PromoteResult(name, version, True, message)


def _why_not(candidate: VersionInfo, champion: VersionInfo | None, gated: GateResult) -> str | None:
    """Why the candidate, which passed its gate, must not become champion after all; None when it may."""
    if champion is not None and champion.version == candidate.version:
        return None  # this version already, on a retry
    if ROLLED_BACK_TAG in candidate.tags:  # its gate may have been against the very champion it was rolled back to
        return (
            f"v{candidate.version} was rolled back by hand ({candidate.tags[ROLLED_BACK_TAG]}); "
            f"`landmarkflow rollback {candidate.name} --to {candidate.version}` makes it champion again"
        )
    if champion is None or champion.version == gated.champion_version:
        return None  # the champion the gate compared with
    seen = f"v{gated.champion_version}" if gated.champion_version else "no champion"
    moved = f"v{candidate.version} passed its gates against {seen}, but v{champion.version} became champion since"
    if champion.data_hash != candidate.data_hash or champion.nme is None:
        return (
            f"{moved}, measured on other data ({champion.data_hash}): its NME on this data is unknown here; "
            "run the gate again to compare with it"
        )
    candidate_nme = gated.decision["candidate_nme"]
    check = champion_check(candidate_nme, champion.nme, gated.champion_tolerance, f"champion v{champion.version}")
    return None if check.passed else f"{moved} and v{candidate.version} is worse: {check.detail}"
