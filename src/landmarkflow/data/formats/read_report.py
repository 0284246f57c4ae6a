"""What every native-format reader reports beside its records: faces counted per split and subset, and the
broken faces or files it left out, so that validation can list every problem instead of stopping at the first."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from landmarkflow.data.formats.errors import FormatError


@dataclass
class FormatReport(ABC):
    """The counts and problems every reader shares; a format's report adds its own fields and summary parts."""

    not_read_note: ClassVar[str] = "faces or files not read (see the problems)"

    root: Path
    faces_per_split: dict[str, int] = field(default_factory=dict)
    faces_per_subset: dict[str, int] = field(default_factory=dict)
    problems: list[FormatError] = field(default_factory=list)

    @property
    def faces(self) -> int:
        """All faces read."""
        return sum(self.faces_per_split.values())

    def count(self, split: str, subsets: Iterable[str] = ()) -> None:
        """Count one face read into `split` and each of its `subsets`."""
        self.faces_per_split[split] = self.faces_per_split.get(split, 0) + 1
        for subset in subsets:
            self.faces_per_subset[subset] = self.faces_per_subset.get(subset, 0) + 1

    def collect(self, problem: FormatError, strict: bool) -> None:
        """Raise `problem` when `strict`; otherwise keep it, so that reading goes on with the next face."""
        if strict:
            raise problem
        self.problems.append(problem)

    def summary(self) -> str:
        """One line for logs: the faces, where they came from, the format's own counts, then the problems."""
        parts = [f"{self.faces} faces {self.source()}", f"splits {self.faces_per_split}", *self.details()]
        if self.problems:
            parts.append(f"{len(self.problems)} {self.not_read_note}")
        return "; ".join(parts)

    @abstractmethod
    def source(self) -> str:
        """Where the faces came from, as the summary says it after "N faces"."""

    @abstractmethod
    def details(self) -> list[str]:
        """The format's own counts, each a part of the summary after the splits."""
