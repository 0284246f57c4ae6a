"""The MLflow store each test gets (conftest.isolated_tracking), and whether the test wrote to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHANGE_COUNTER = slice(24, 28)
"""SQLite's file change counter in the database header: every transaction that writes the file increments it (in the
rollback-journal mode MLflow's stores use), where a file's mtime can miss a write within its clock tick."""


def change_counter(database: Path) -> bytes:
    with database.open("rb") as handle:
        return handle.read(CHANGE_COUNTER.stop)[CHANGE_COUNTER]


@dataclass(frozen=True)
class TrackingStore:
    """A test's sqlite store, a copy of a new one, and its change counter when the test began."""

    database: Path
    counter_at_start: bytes

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.database}"

    def written(self) -> bool:
        """Whether anything wrote to the store since the test began: a run, an experiment, a model version."""
        return change_counter(self.database) != self.counter_at_start
