"""A lock per registered model under which its aliases move, built from the tracking server alone.

MLflow has no compare-and-set for aliases: two runs that each read `champion`, compare with it and move it can
interleave into a worse champion. What the server does do atomically is number versions: a new version gets
max + 1 of its registered model's numbers in one transaction, and a number is never handed out twice (deleted
versions keep theirs). So a contender takes a *ticket*, a version of the registered model `<name>.alias-lock`, and
holds the lock once no live ticket with a lower number is left: first come, first served, and two contenders can
never both see themselves first.

A contender that dies leaves its ticket behind. Every contender touches its ticket (rewrites its description, which
stamps the server's last-updated time) each time it polls and before each alias move; a ticket untouched for
`stale_after_s` by the server's clock is a dead contender's, and a contender that finds one ahead of it deletes it
before going ahead. The deletion is the fence: a contender that was only slow learns at its next touch that its
ticket is gone, or that its own touches were `stale_after_s` apart, and stops (LeaseExpired) instead of moving an
alias. It moves an alias only while that request, at its worst (every retry of `HttpRetryPolicy`), lands before its
ticket could go stale.

What the holder changes elsewhere (a cluster's InferenceService) cannot be fenced by the tracking server, so the
holder hands that system a fencing token, `LockFence`: the lock's creation time and the ticket's number, which only
grow from one holder to the next. A write that carries it is refused where a later holder's write already landed.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from landmarkflow.outages import LeaseExpired, unreachable_service
from landmarkflow.registry import (
    delete_alias,
    ensure_registered_model,
    not_found,
    set_alias,
    tag_version,
    untag_version,
)
from landmarkflow.tracking import HttpRetryPolicy

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".alias-lock"
STALE_AFTER_S = 900.0
"""A ticket untouched this long is a dead contender's. It must exceed one request at its worst (612 s with our
retry bounds), so a holder can still move an alias after its last touch; a crashed promotion delays the next one
of the same model by at most this long."""
POLL_S = 1.0
"""How often a waiting contender looks again (and touches its ticket)."""
FENCE_TEXT = re.compile(r"(?P<created>[0-9]+)\.(?P<ticket>[0-9]+)")
TOKEN_TAG = "token"
"""Tells a contender's own tickets from the others' (the HTTP client may retry a create the server carried out)."""


def lock_name(name: str) -> str:
    """The registered model whose versions are the tickets for the aliases of `name`."""
    return f"{name}{LOCK_SUFFIX}"


@dataclass(frozen=True, order=True)
class LockFence:
    """A fencing token: a later holder's is greater. Ticket numbers start again when the lock's registered model is
    deleted and made anew, so its creation time comes first."""

    lock_created_ms: int
    ticket: int

    def __str__(self) -> str:
        return f"{self.lock_created_ms}.{self.ticket}"

    @classmethod
    def parse(cls, text: str) -> LockFence:
        """The fence `str` wrote; ValueError for anything else."""
        match = FENCE_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is no alias-lock fence: expected <lock created ms>.<ticket number>")
        return cls(int(match["created"]), int(match["ticket"]))


@dataclass(frozen=True)
class Ticket:
    number: int
    token: str
    touched_ms: int
    """The server's clock when the ticket was last touched."""
    holder: str

    @classmethod
    def of(cls, version: ModelVersion) -> Ticket:
        return cls(
            int(version.version),
            version.tags.get(TOKEN_TAG, ""),
            int(version.last_updated_timestamp),
            version.description or "",
        )


class AliasLock:
    """One contender for the aliases of a registered model; made and released by `alias_lock`."""

    def __init__(self, name: str, holder: str, run_id: str, stale_after_s: float, poll_s: float) -> None:
        request_s = HttpRetryPolicy.from_env().worst_case_s()
        if request_s >= stale_after_s:
            raise ValueError(
                f"one MLflow request may take {request_s:.0f} s under the MLFLOW_HTTP_REQUEST_* bounds, no less than "
                f"the alias lock's stale_after_s={stale_after_s:.0f}: a holder could never move an alias safely"
            )
        self.name, self.holder, self.run_id = name, holder, run_id
        self.stale_after_s, self.poll_s, self.request_s = stale_after_s, poll_s, request_s
        self.lock = lock_name(name)
        self.token = uuid.uuid4().hex
        self.client = MlflowClient()
        self.ticket: Ticket | None = None
        self.fencing_token: LockFence | None = None
        """This holder's token, for what it changes outside the tracking server."""
        self._touch_sent = 0.0
        """time.monotonic() just before the last touch was sent: no later than the server stamped it."""

    def take_ticket(self) -> None:
        ensure_registered_model(
            self.lock,
            f"Alias lock of {self.name}: each version is a step waiting for or holding the right to move the aliases "
            f"of {self.name}, the lowest first; empty when none is running. Not a model.",
        )
        # Read before the ticket is taken: were the lock made anew in between, the token would come out too small,
        # and refused, rather than too great.
        lock_created_ms = int(self.client.get_registered_model(self.lock).creation_timestamp)
        self._touch_sent = time.monotonic()
        created = self.client.create_model_version(
            self.lock,
            f"runs:/{self.run_id}/model",
            run_id=self.run_id,
            tags={TOKEN_TAG: self.token},
            description=self.holder,
        )
        self.ticket = Ticket.of(created)
        self.fencing_token = LockFence(lock_created_ms, self.ticket.number)

    def _touch(self) -> Ticket:
        """Stamp the ticket with the server's time now; LeaseExpired when it was, or may have been, taken for dead."""
        assert self.ticket is not None
        sent = time.monotonic()
        try:
            touched = self.client.update_model_version(self.lock, str(self.ticket.number), description=self.holder)
        except MlflowException as exc:
            if not_found(exc):
                raise LeaseExpired(self._lapsed("was deleted by another contender, which took it for dead")) from exc
            raise
        gap_s = time.monotonic() - self._touch_sent
        if gap_s >= self.stale_after_s:
            raise LeaseExpired(self._lapsed(f"went {gap_s:.0f} s untouched, and others may have taken it for dead"))
        self._touch_sent = sent
        self.ticket = Ticket.of(touched)
        return self.ticket

    def _lapsed(self, what: str) -> str:
        assert self.ticket is not None
        return (
            f"{self.holder}: its ticket v{self.ticket.number} in {self.lock} {what} (stale after "
            f"{self.stale_after_s:.0f} s), so it moved no alias of {self.name}; run the step again"
        )

    def wait_for_turn(self) -> None:
        """Return once every ticket ahead of ours is gone or dead (the dead ones are deleted first)."""
        stale_ms = 1000 * self.stale_after_s
        announced = False
        while True:
            mine = self._touch()
            tickets = [Ticket.of(v) for v in self.client.search_model_versions(f"name='{self.lock}'")]
            ahead = [t for t in tickets if t.number < mine.number and t.token != self.token]
            dead = [t for t in ahead if mine.touched_ms - t.touched_ms > stale_ms]
            if len(dead) == len(ahead):
                for ticket in dead:
                    log.warning("%s: ticket v%s (%s) is stale, deleting it", self.lock, ticket.number, ticket.holder)
                    self._delete(ticket.number)
                return
            if not announced:
                log.info("%s: waiting for %s", self.lock, ", ".join(f"v{t.number} ({t.holder})" for t in ahead))
                announced = True
            time.sleep(self.poll_s)

    def move_alias(self, alias: str, version: str) -> None:
        """Point `alias` of the model at `version`, as the holder; LeaseExpired when the move might land after our
        ticket could be taken for dead."""
        self._fence()
        set_alias(self.name, alias, version)

    def remove_alias(self, alias: str) -> None:
        """Remove `alias` from the model, as the holder; LeaseExpired as for `move_alias`."""
        self._fence()
        delete_alias(self.name, alias)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        """Set `tags` on `version` of the model, as the holder (its gate outcome, which promote decides on under this
        lock); one request per tag, each fenced as `move_alias` is."""
        for key, value in tags.items():
            self._fence()
            tag_version(self.name, version, {key: value})

    def untag_version(self, version: str, key: str) -> None:
        """Remove the tag `key` from `version` of the model, as the holder; fenced as `move_alias` is."""
        self._fence()
        untag_version(self.name, version, key)

    def _fence(self) -> None:
        """Touch our ticket; LeaseExpired when one request sent now might land after it could be taken for dead."""
        self._touch()
        left_s = self.stale_after_s - (time.monotonic() - self._touch_sent)
        if left_s <= self.request_s:
            raise LeaseExpired(
                self._lapsed(f"has {left_s:.0f} s left, less than one request may take ({self.request_s:.0f} s)")
            )

    def release(self) -> None:
        """Delete our tickets (the HTTP client may have made two); one left behind only goes stale, so a failure here
        is logged, not raised."""
        try:
            mine = self.client.search_model_versions(f"name='{self.lock}' and tags.{TOKEN_TAG}='{self.token}'")
            for version in mine:
                self._delete(int(version.version))
        except MlflowException as exc:
            log.warning(
                "%s: could not delete the ticket of %s (stale after %.0f s): %s",
                self.lock,
                self.holder,
                self.stale_after_s,
                exc,
            )

    def _delete(self, number: int) -> None:
        try:
            self.client.delete_model_version(self.lock, str(number))
        except MlflowException as exc:
            if not not_found(exc):
                raise


@contextmanager
def alias_lock(
    name: str, holder: str, run_id: str, stale_after_s: float = STALE_AFTER_S, poll_s: float = POLL_S
) -> Iterator[AliasLock]:
    """Hold the alias lock of registered model `name` in the `with` block; `holder` says who (shown to waiters and in
    the ticket's description), `run_id` is the training run the step works for.

    After an outage that outlasted the retries, the ticket is left to go stale rather than spending a second retry
    window on deleting it: the step's failure comes within the bounds its message states.
    """
    lock = AliasLock(name, holder, run_id, stale_after_s, poll_s)
    try:
        lock.take_ticket()
        lock.wait_for_turn()
        yield lock
    except Exception as exc:
        if unreachable_service(exc) is None:
            lock.release()
        else:
            log.warning("%s: the ticket of %s is left behind (stale after %.0f s)", lock.lock, holder, stale_after_s)
        raise
    else:
        lock.release()
