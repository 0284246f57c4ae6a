"""Landmark layouts: the one table of point semantics, flip permutations and NME normalisers.

Every other module asks this one. Tables come from the HIH code and agree with HRNet's MATCHED_PARTS
(see docs/models.md §1.3). Coordinates are 0-based pixel centres; a flip maps x to W - 1 - x and
permutes the points with `flip_permutation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class NormaliserKind(str, Enum):
    """How an NME normalising distance is measured."""

    POINT_PAIR = "point_pair"  # distance between two landmarks
    GROUP_CENTRES = "group_centres"  # distance between the centroids of two point groups
    BOX_SIZE = "box_size"  # sqrt(w * h) of the ground-truth face box (AFLW)


@dataclass(frozen=True)
class Normaliser:
    """A named NME normaliser: `a` and `b` are point indices (POINT_PAIR) or group names (GROUP_CENTRES)."""

    name: str
    kind: NormaliserKind
    a: int | str | None = None
    b: int | str | None = None


@dataclass(frozen=True)
class Layout:
    """A landmark layout: how many points, what they are, how they mirror and how NME is normalised."""

    name: str
    description: str
    num_points: int
    flip_permutation: tuple[int, ...]
    groups: dict[str, tuple[int, ...]]
    normalisers: dict[str, Normaliser]
    default_normaliser: str
    datasets: tuple[str, ...] = field(default=())
    boundaries: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Facial boundary lines (LAB / DSAT boundary heatmaps): each an ordered chain of points drawn as a
    polyline; a chain that ends on its first point is closed. Left and right as in `groups`."""
    eyes: tuple[str, str] = ("right_eye", "left_eye")
    """The groups of the subject's right and left eye, whose centroids draw the eye line (how far a face is tilted)."""

    def __post_init__(self) -> None:
        perm = self.flip_permutation
        if sorted(perm) != list(range(self.num_points)):
            raise ValueError(f"layout {self.name}: flip permutation is not a permutation of 0..{self.num_points - 1}")
        if any(perm[perm[i]] != i for i in range(self.num_points)):
            raise ValueError(f"layout {self.name}: flip permutation is not an involution")
        if self.default_normaliser not in self.normalisers:
            raise ValueError(f"layout {self.name}: unknown default normaliser {self.default_normaliser!r}")
        missing = [eye for eye in self.eyes if eye not in self.groups]
        if missing:
            raise ValueError(f"layout {self.name}: eyes name groups it does not have: {missing}")
        right, left = (self.groups[eye] for eye in self.eyes)
        if not right or not left or not all(0 <= i < self.num_points for i in (*right, *left)):
            raise ValueError(
                f"layout {self.name}: each eye needs >= 1 point in 0..{self.num_points - 1}, got {right} and {left}"
            )
        if sorted(perm[i] for i in right) != sorted(left):
            raise ValueError(f"layout {self.name}: the flip permutation must map the right eye's points to the left's")
        for line, chain in self.boundaries.items():
            if len(chain) < 2 or not all(0 <= i < self.num_points for i in chain):
                raise ValueError(f"layout {self.name}: boundary {line!r} needs >= 2 points in 0..{self.num_points - 1}")

    def flip_points(self, points: np.ndarray, width: int) -> np.ndarray:
        """Mirror (..., K, 2) points in an image of `width` pixels: permute, then x -> W - 1 - x."""
        flipped = np.asarray(points)[..., list(self.flip_permutation), :].copy()
        flipped[..., 0] = width - 1 - flipped[..., 0]
        return flipped

    def eye_line_deg(self, landmarks: np.ndarray) -> np.ndarray:
        """(N,) roll of (N, K, 2) faces in degrees: the angle of the line from the right eye's centre to the left's,
        0 for level eyes, positive when the left eye sits lower in the image (a clockwise roll on screen)."""
        line = self.group_centres(landmarks, self.eyes[1]) - self.group_centres(landmarks, self.eyes[0])
        return np.degrees(np.arctan2(line[:, 1], line[:, 0]))

    def group_centres(self, landmarks: np.ndarray, group: str) -> np.ndarray:
        """(N, 2) centroids of a point group in (N, K, 2) faces."""
        return np.asarray(landmarks, dtype=np.float64)[:, list(self.groups[group])].mean(axis=1)

    def normalising_distance(
        self, landmarks: np.ndarray, bbox: np.ndarray | None = None, normaliser: str | None = None
    ) -> np.ndarray:
        """Per-face NME denominator for ground truth `landmarks` (N, K, 2) and boxes (N, 4) x1 y1 x2 y2."""
        norm = self.normalisers[normaliser or self.default_normaliser]
        pts = np.asarray(landmarks, dtype=np.float64)
        if norm.kind is NormaliserKind.POINT_PAIR:
            return np.linalg.norm(pts[:, int(norm.a)] - pts[:, int(norm.b)], axis=-1)
        if norm.kind is NormaliserKind.GROUP_CENTRES:
            return np.linalg.norm(self.group_centres(pts, str(norm.a)) - self.group_centres(pts, str(norm.b)), axis=-1)
        if bbox is None:
            raise ValueError(f"normaliser {norm.name!r} of layout {self.name} needs the face boxes")
        box = np.asarray(bbox, dtype=np.float64)
        return np.sqrt((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))


def _span(start: int, stop: int) -> tuple[int, ...]:
    return tuple(range(start, stop + 1))


def _perm(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split())


def _closed(start: int, stop: int, first: int) -> tuple[int, ...]:
    """Points start..stop, then back to `first`: a chain that closes a curve (an eyelid, a lip, a brow)."""
    return (*_span(start, stop), first)


IBUG_68 = Layout(
    name="68",
    description="300W / iBUG 68-point markup",
    num_points=68,
    flip_permutation=_perm(
        "16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 26 25 24 23 22 21 20 19 18 17 27 28 29 30 35 34 33 32 31 "
        "45 44 43 42 47 46 39 38 37 36 41 40 54 53 52 51 50 49 48 59 58 57 56 55 64 63 62 61 60 67 66 65"
    ),
    groups={
        "jaw": _span(0, 16),
        "right_brow": _span(17, 21),
        "left_brow": _span(22, 26),
        "nose_bridge": _span(27, 30),
        "nose_bottom": _span(31, 35),
        "right_eye": _span(36, 41),
        "left_eye": _span(42, 47),
        "outer_lip": _span(48, 59),
        "inner_lip": _span(60, 67),
    },
    normalisers={
        "inter_ocular": Normaliser("inter_ocular", NormaliserKind.POINT_PAIR, 36, 45),
        "inter_pupil": Normaliser("inter_pupil", NormaliserKind.GROUP_CENTRES, "right_eye", "left_eye"),
    },
    default_normaliser="inter_ocular",
    datasets=("300w", "cofw68", "synthetic"),
    # The 13 boundaries of DSAT's code (docs/models.md §2.2), which are LAB's.
    boundaries={
        "jaw": _span(0, 16),
        "right_brow": _span(17, 21),
        "left_brow": _span(22, 26),
        "nose_bridge": _span(27, 30),
        "nose_bottom": _span(31, 35),
        "right_upper_eyelid": _span(36, 39),
        "right_lower_eyelid": _closed(39, 41, 36),
        "left_upper_eyelid": _span(42, 45),
        "left_lower_eyelid": _closed(45, 47, 42),
        "upper_lip_top": _span(48, 54),
        "upper_lip_bottom": _span(60, 64),
        "lower_lip_top": _closed(64, 67, 60),
        "lower_lip_bottom": _closed(54, 59, 48),
    },
)

WFLW_98 = Layout(
    name="98",
    description="WFLW 98-point markup",
    num_points=98,
    flip_permutation=_perm(
        "32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 "
        "46 45 44 43 42 50 49 48 47 37 36 35 34 33 41 40 39 38 51 52 53 54 59 58 57 56 55 "
        "72 71 70 69 68 75 74 73 64 63 62 61 60 67 66 65 82 81 80 79 78 77 76 87 86 85 84 83 "
        "92 91 90 89 88 95 94 93 97 96"
    ),
    groups={
        "contour": _span(0, 32),
        "right_brow": _span(33, 41),
        "left_brow": _span(42, 50),
        "nose": _span(51, 59),
        "right_eye": _span(60, 67),
        "left_eye": _span(68, 75),
        "outer_lip": _span(76, 87),
        "inner_lip": _span(88, 95),
        "pupils": (96, 97),
    },
    normalisers={
        "inter_ocular": Normaliser("inter_ocular", NormaliserKind.POINT_PAIR, 60, 72),
        "inter_pupil": Normaliser("inter_pupil", NormaliserKind.POINT_PAIR, 96, 97),
    },
    default_normaliser="inter_ocular",
    datasets=("wflw", "synthetic"),
    # LAB's 13 WFLW boundaries: each brow is one closed loop (upper edge out, lower edge back).
    boundaries={
        "contour": _span(0, 32),
        "right_brow": _closed(33, 41, 33),
        "left_brow": _closed(42, 50, 42),
        "nose_bridge": _span(51, 54),
        "nose_bottom": _span(55, 59),
        "right_upper_eyelid": _span(60, 64),
        "right_lower_eyelid": _closed(64, 67, 60),
        "left_upper_eyelid": _span(68, 72),
        "left_lower_eyelid": _closed(72, 75, 68),
        "upper_lip_top": _span(76, 82),
        "upper_lip_bottom": _span(88, 92),
        "lower_lip_top": _closed(92, 95, 88),
        "lower_lip_bottom": _closed(82, 87, 76),
    },
)

COFW_29 = Layout(
    name="29",
    description="COFW 29-point markup",
    num_points=29,
    flip_permutation=_perm("1 0 3 2 6 7 4 5 9 8 11 10 14 15 12 13 17 16 19 18 20 21 23 22 24 25 26 27 28"),
    groups={
        "brows": _span(0, 7),
        "outer_eye_corners": (8, 9),
        "inner_eye_corners": (10, 11),
        "eyelids": _span(12, 15),
        "pupils": (16, 17),
        "right_eye": (8, 10, 16),  # corners and pupil: the eye line
        "left_eye": (9, 11, 17),
        "nose": _span(18, 21),
        "mouth": _span(22, 27),
        "chin": (28,),
    },
    normalisers={
        "inter_ocular": Normaliser("inter_ocular", NormaliserKind.POINT_PAIR, 8, 9),
        "inter_pupil": Normaliser("inter_pupil", NormaliserKind.POINT_PAIR, 16, 17),
    },
    default_normaliser="inter_ocular",
    datasets=("cofw", "synthetic"),
    # Ours, from the point roles above (no published chains): 11 lines through the few points each feature has;
    # the nose bridge (tip only) and the chin (one point) give no line.
    boundaries={
        "right_brow": (0, 4, 2, 5, 0),
        "left_brow": (1, 6, 3, 7, 1),
        "right_upper_eyelid": (8, 12, 10),
        "right_lower_eyelid": (10, 13, 8),
        "left_upper_eyelid": (9, 14, 11),
        "left_lower_eyelid": (11, 15, 9),
        "nose_bottom": (18, 21, 19),
        "upper_lip_top": (22, 24, 23),
        "upper_lip_bottom": (22, 25, 23),
        "lower_lip_top": (22, 26, 23),
        "lower_lip_bottom": (22, 27, 23),
    },
)

AFLW_19 = Layout(
    name="19",
    description="AFLW 19-point markup (the 21 original points without the ears)",
    num_points=19,
    flip_permutation=_perm("5 4 3 2 1 0 11 10 9 8 7 6 14 13 12 17 16 15 18"),
    groups={
        "brows": _span(0, 5),
        "eyes": _span(6, 11),
        "right_eye": _span(6, 8),
        "left_eye": _span(9, 11),
        "nose": _span(12, 14),
        "mouth": _span(15, 17),
        "chin": (18,),
    },
    normalisers={"box_size": Normaliser("box_size", NormaliserKind.BOX_SIZE)},
    default_normaliser="box_size",
    datasets=("aflw", "synthetic"),
    # Ours: the six three-point lines AFLW's markup has (corner, centre, corner); the chin gives no line.
    boundaries={
        "right_brow": _span(0, 2),
        "left_brow": _span(3, 5),
        "right_eye": _span(6, 8),
        "left_eye": _span(9, 11),
        "nose": _span(12, 14),
        "mouth": _span(15, 17),
    },
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (IBUG_68, WFLW_98, COFW_29, AFLW_19)}

# Test subsets a benchmark's own files define, by dataset (docs/models.md §1.2). WFLW's are in the order of the six
# attribute flags of its annotation lines and named as its subset list files (list_98pt_test_<name>.txt).
DATASET_SUBSETS: dict[str, tuple[str, ...]] = {
    "wflw": ("largepose", "expression", "illumination", "makeup", "occlusion", "blur"),
    "aflw": ("frontal",),
}


# Face regions by layout: the layout's point groups gathered into the same five facial parts for every layout, so
# that a region-wise model (RDFN's per-region score-map heads) sees comparable regions across datasets. COFW and
# AFLW have no cheek contour, so their "contour" region is the chin point alone.
FACE_REGIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "68": {
        "contour": ("jaw",),
        "brows": ("right_brow", "left_brow"),
        "nose": ("nose_bridge", "nose_bottom"),
        "eyes": ("right_eye", "left_eye"),
        "mouth": ("outer_lip", "inner_lip"),
    },
    "98": {
        "contour": ("contour",),
        "brows": ("right_brow", "left_brow"),
        "nose": ("nose",),
        "eyes": ("right_eye", "left_eye", "pupils"),
        "mouth": ("outer_lip", "inner_lip"),
    },
    "29": {
        "contour": ("chin",),
        "brows": ("brows",),
        "nose": ("nose",),
        "eyes": ("outer_eye_corners", "inner_eye_corners", "eyelids", "pupils"),
        "mouth": ("mouth",),
    },
    "19": {
        "contour": ("chin",),
        "brows": ("brows",),
        "nose": ("nose",),
        "eyes": ("eyes",),
        "mouth": ("mouth",),
    },
}


def face_regions(name: str) -> dict[str, tuple[int, ...]]:
    """Point indices of each face region of layout `name`; every point belongs to exactly one region."""
    layout = get_layout(name)
    regions = {
        region: tuple(sorted(i for group in groups for i in layout.groups[group]))
        for region, groups in FACE_REGIONS[layout.name].items()
    }
    covered = sorted(i for points in regions.values() for i in points)
    if covered != list(range(layout.num_points)):
        raise ValueError(f"layout {layout.name}: face regions do not partition the {layout.num_points} points")
    return regions


def get_layout(name: str) -> Layout:
    """The layout called `name` ("68", "98", "29" or "19"), with a clear error for anything else."""
    try:
        return LAYOUTS[str(name)]
    except KeyError:
        raise ValueError(f"unknown layout {name!r}: expected one of {', '.join(LAYOUTS)}") from None
