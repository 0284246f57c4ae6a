"""What each dataset should look like: its layouts, the subset names its reader records, its published size,
and whether its official split assigns faces or whole images.

The per-dataset checks of the suite (layout fits the dataset, subset names known, AFLW-Frontal flags
consistent with visibility, an image in two splits) read these profiles; the published counts become warnings,
never failures, because a user may well train on part of a benchmark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from landmarkflow.data.manifest import PRIVATE_SPLIT
from landmarkflow.layouts import DATASET_SUBSETS, LAYOUTS

W300_SUBSETS = ("common", "challenging", "full")


@dataclass(frozen=True)
class DatasetProfile:
    """One dataset's expectations; `published` counts faces per split or subset in the full release.

    `split_per_face`: the official split assigns faces, not images, so one image may hold faces of two splits
    (AFLW's `ra` split); that is the protocol, noted but not a `split_leak`.
    """

    name: str
    layouts: tuple[str, ...]
    subsets: tuple[str, ...] = ()
    published: dict[str, int] = field(default_factory=dict)
    split_per_face: bool = False


PROFILES: dict[str, DatasetProfile] = {
    profile.name: profile
    for profile in (
        DatasetProfile(
            "300w",
            ("68",),
            W300_SUBSETS,
            {"train": 3148, "test": 689, "common": 554, "challenging": 135, "full": 689, PRIVATE_SPLIT: 600},
        ),
        DatasetProfile("wflw", ("98",), DATASET_SUBSETS["wflw"], {"train": 7500, "test": 2500}),
        DatasetProfile("cofw", ("29",), (), {"train": 1345, "test": 507}),
        DatasetProfile("cofw68", ("68",), (), {"test": 507}),
        DatasetProfile(
            "aflw",
            ("19",),
            DATASET_SUBSETS["aflw"],
            {"train": 20000, "test": 4386, "frontal": 1314},
            split_per_face=True,
        ),
        DatasetProfile("synthetic", ("68", "98", "29", "19"), W300_SUBSETS + DATASET_SUBSETS["wflw"]),
    )
}


def profile_for(dataset: str) -> DatasetProfile | None:
    """The profile of a dataset name, or None for a name we have no expectations about."""
    return PROFILES.get(dataset)


def split_is_per_face(dataset: str) -> bool:
    """True when the dataset's official split may put faces of one image into different splits."""
    profile = profile_for(dataset)
    return profile is not None and profile.split_per_face


def layout_fits(dataset: str, layout: str) -> bool:
    """False only for a known layout the dataset never has (an unknown layout is `known_layout`'s failure)."""
    profile = profile_for(dataset)
    return profile is None or layout not in LAYOUTS or layout in profile.layouts


def unknown_subsets(dataset: str, subsets: Iterable[str]) -> int:
    profile = profile_for(dataset)
    return 0 if profile is None else sum(s not in profile.subsets for s in subsets)


def subset_flags_consistent(
    dataset: str, split: str, subsets: Iterable[str], visible: np.ndarray, points: np.ndarray | None, box: np.ndarray
) -> bool:
    """AFLW-Frontal: a test face is frontal exactly when all 19 points are visible and inside its box."""
    if dataset != "aflw":
        return True
    inside = points is not None and bool(
        (
            (points[:, 0] >= box[0]) & (points[:, 0] <= box[2]) & (points[:, 1] >= box[1]) & (points[:, 1] <= box[3])
        ).all()
    )
    frontal = split == "test" and bool(np.asarray(visible, dtype=bool).all()) and inside
    return frontal == ("frontal" in set(subsets))


def published_count_warnings(datasets: Iterable[str], splits: Iterable[str], subsets: Iterable[list[str]]) -> list[str]:
    """One line per split or subset whose face count differs from the dataset's published release."""
    rows = list(zip(datasets, splits, subsets, strict=True))
    warnings = []
    for name in sorted({d for d, _, _ in rows}):
        profile = profile_for(name)
        if profile is None or not profile.published:
            continue
        counts = Counter(split for d, split, _ in rows if d == name)
        counts.update(s for d, _, subs in rows if d == name for s in subs)
        for part, expected in profile.published.items():
            if counts.get(part, 0) != expected:
                warnings.append(
                    f"{name} {part}: {counts.get(part, 0)} faces, the published release has {expected} "
                    "(fine for a sample or a subset; metrics are then not comparable with papers)"
                )
    return warnings


def shared_image_notes(datasets: Iterable[str], splits: Iterable[str], image_paths: Iterable[str]) -> list[str]:
    """One line per per-face-split dataset whose images hold faces of several splits: its protocol, not a leak."""
    splits_per_image: dict[tuple[str, str], set[str]] = {}
    for dataset, split, path in zip(datasets, splits, image_paths, strict=True):
        if split_is_per_face(dataset):
            splits_per_image.setdefault((dataset, path), set()).add(split)
    shared = Counter(dataset for (dataset, _), found in splits_per_image.items() if len(found) > 1)
    return [
        f"{name}: {count} images hold faces of more than one split; {name}'s official split is per face, so that "
        "is its protocol, not a leak"
        for name, count in sorted(shared.items())
    ]
