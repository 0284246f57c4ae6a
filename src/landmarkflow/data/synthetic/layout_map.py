"""One rendered face annotated in every layout: the 98 (WFLW), 29 (COFW) and 19 (AFLW) points are measured on
what the renderer drew (the 68 points, the jaw and eyelid curves, the brows' lower edge, pupils, nose wings), so
each sits on image structure with the semantics docs/models.md §1.3 gives it.

`SOURCES` is the one table: for every layout, point by point, which 68-point or drawn feature it is. Left and
right are the image's, as in the 68 layout (index 0 of each pair lies on the image left); the tables agree with
the flip permutations of `landmarkflow.layouts` (a test mirrors a face and checks it). Visibility of a derived
point comes from the same occluder mask, by the same rule, as that of the 68 points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landmarkflow.data.synthetic.face3d import FaceGeometry
from landmarkflow.data.synthetic.params import FaceSpec
from landmarkflow.data.synthetic.render import RenderedFace, brow_lower_edge, gaze_shift, spline, visibility
from landmarkflow.layouts import IBUG_68, get_layout

JAW = IBUG_68.groups["jaw"]
EYES = (IBUG_68.groups["right_eye"], IBUG_68.groups["left_eye"])  # image left, image right
BROW_START = IBUG_68.groups["right_brow"][0]
NOSE_WINGS = (31, 35)
# The dataset whose reader reads synthetic faces written in each layout (`synthesize(..., layout=...)`).
LAYOUT_DATASETS: dict[str, str] = {"68": "synthetic", "98": "wflw", "29": "cofw", "19": "aflw"}


@dataclass(frozen=True)
class Source:
    """Where one derived point comes from; `a` and `b` are 68-point indices.

    kind: "point" (68-point a), "curve" (halfway along the drawn jaw or eyelid curve between neighbours a and b),
    "brow_lower" (the drawn lower brow edge under a), "brow_middle" (halfway between a and the lower edge under
    it: the brow's centre line), "midpoint" (halfway between a and b), "pupil" (centre of the drawn pupil of the
    eye whose first point is a: 36 or 42), "wing" (outermost point of the drawn nose wing beside a: 31 or 35).
    """

    kind: str
    a: int
    b: int = -1


def _p(a: int) -> Source:
    return Source("point", a)


def _curve(a: int, b: int) -> Source:
    return Source("curve", a, b)


def _wflw_contour() -> tuple[Source, ...]:
    """WFLW's 33 contour points: the 17 jaw points at even indices (the usual 68 <-> 98 correspondence) and
    the drawn jaw curve halfway between them at odd indices."""
    return tuple(_p(i // 2) if i % 2 == 0 else _curve(i // 2, i // 2 + 1) for i in range(33))


def _wflw_eye(first: int) -> tuple[Source, ...]:
    """8 eyelid points from one corner round the eye: the 6 points of the 68 eye plus the middles of both lids."""
    e = [first + k for k in range(6)]
    return (_p(e[0]), _p(e[1]), _curve(e[1], e[2]), _p(e[2]), _p(e[3]), _p(e[4]), _curve(e[4], e[5]), _p(e[5]))


SOURCES: dict[str, tuple[Source, ...]] = {
    "68": tuple(_p(i) for i in range(68)),
    "98": (
        *_wflw_contour(),  # 0-32
        *(_p(i) for i in range(17, 22)),  # 33-37 image-left brow, upper edge from its outer end
        *(Source("brow_lower", i) for i in (21, 20, 19, 18)),  # 38-41 its lower edge, back towards the outer end
        *(_p(i) for i in range(22, 27)),  # 42-46 image-right brow, upper edge from its inner end
        *(Source("brow_lower", i) for i in (25, 24, 23, 22)),  # 47-50 its lower edge, back towards the inner end
        *(_p(i) for i in range(27, 36)),  # 51-59 nose bridge and bottom
        *_wflw_eye(36),  # 60-67 from the outer corner (60)
        *_wflw_eye(42),  # 68-75 from the inner corner (68)
        *(_p(i) for i in range(48, 68)),  # 76-95 outer and inner lip
        Source("pupil", 36),  # 96
        Source("pupil", 42),  # 97
    ),
    "29": (
        *(Source("brow_middle", i) for i in (17, 26, 21, 22)),  # 0/1 outer brow ends, 2/3 inner brow ends
        _p(19),  # 4 image-left brow, top
        Source("brow_lower", 19),  # 5 its bottom
        _p(24),  # 6 image-right brow, top
        Source("brow_lower", 24),  # 7 its bottom
        *(_p(i) for i in (36, 45, 39, 42)),  # 8/9 outer eye corners, 10/11 inner eye corners
        _curve(37, 38),  # 12 image-left upper lid
        _curve(40, 41),  # 13 its lower lid
        _curve(43, 44),  # 14 image-right upper lid
        _curve(46, 47),  # 15 its lower lid
        Source("pupil", 36),  # 16
        Source("pupil", 42),  # 17
        Source("wing", 31),  # 18
        Source("wing", 35),  # 19
        _p(30),  # 20 nose tip
        _p(33),  # 21 nose base
        _p(48),  # 22 mouth corners
        _p(54),  # 23
        *(_p(i) for i in (51, 62, 66, 57)),  # 24-27 upper lip top and bottom, lower lip top and bottom
        _p(8),  # 28 chin
    ),
    "19": (
        *(Source("brow_middle", i) for i in (17, 19, 21, 22, 24, 26)),  # 0-5 brows: corner, centre, corner
        _p(36),  # 6 image-left eye: corner, centre (pupil), corner
        Source("pupil", 36),  # 7
        _p(39),  # 8
        _p(42),  # 9 image-right eye
        Source("pupil", 42),  # 10
        _p(45),  # 11
        Source("wing", 31),  # 12 nose left, centre (tip), right
        _p(30),  # 13
        Source("wing", 35),  # 14
        _p(48),  # 15 mouth left, centre, right
        Source("midpoint", 62, 66),  # 16
        _p(54),  # 17
        _p(8),  # 18 chin
    ),
}


@dataclass(frozen=True)
class DrawnFeatures:
    """What derived points are measured on, in the frame of the geometry (pixels for a rendered face)."""

    landmarks: np.ndarray
    curve_midpoints: dict[tuple[int, int], np.ndarray]
    brow_lower: np.ndarray
    pupils: dict[int, np.ndarray]
    wings: dict[int, np.ndarray]

    @classmethod
    def from_geometry(cls, geo: FaceGeometry, brow_thickness: float, gaze: tuple[float, float]) -> DrawnFeatures:
        """Measure the features as `render_face` draws them (same splines, brow thickness and gaze shift)."""
        lm = geo.landmarks
        return cls(
            landmarks=lm,
            curve_midpoints=_curve_midpoints(lm),
            brow_lower=brow_lower_edge(geo, brow_thickness),
            pupils={
                int(eye[0]): geo.pupils[k].mean(axis=0) + gaze_shift(lm[list(eye)], gaze) for k, eye in enumerate(EYES)
            },
            wings={wing: geo.nose_wings[k][1] for k, wing in enumerate(NOSE_WINGS)},
        )

    def point(self, source: Source) -> np.ndarray:
        """The (2,) position of one derived point."""
        lm = self.landmarks
        if source.kind == "point":
            return lm[source.a]
        if source.kind == "curve":
            return self.curve_midpoints[(min(source.a, source.b), max(source.a, source.b))]
        if source.kind == "brow_lower":
            return self.brow_lower[source.a - BROW_START]
        if source.kind == "brow_middle":
            return (lm[source.a] + self.brow_lower[source.a - BROW_START]) / 2
        if source.kind == "midpoint":
            return (lm[source.a] + lm[source.b]) / 2
        if source.kind == "pupil":
            return self.pupils[source.a]
        if source.kind == "wing":
            return self.wings[source.a]
        raise ValueError(f"unknown point source {source.kind!r}")

    def points(self, layout: str) -> np.ndarray:
        """(K, 2) points of `layout` ("68", "98", "29" or "19")."""
        get_layout(layout)  # a clear error for an unknown name
        return np.stack([self.point(source) for source in SOURCES[layout]])


def _curve_midpoints(landmarks: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Halfway (t = 1/2) along each drawn Catmull-Rom segment: jaw (open) and both eye outlines (closed)."""
    jaw = list(JAW)
    halves = {(jaw[i], jaw[i + 1]): p for i, p in enumerate(spline(landmarks[jaw], steps=2)[1::2])}
    for eye in EYES:
        ring = list(eye)
        for i, p in enumerate(spline(landmarks[ring], closed=True, steps=2)[1::2]):
            a, b = ring[i], ring[(i + 1) % len(ring)]
            halves[(min(a, b), max(a, b))] = p
    return halves


def annotate(face: RenderedFace, spec: FaceSpec, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """A rendered face's points in `layout` and their visibility (not under an occluder, as for the 68)."""
    features = DrawnFeatures.from_geometry(face.geometry, spec.appearance.brow_thickness, spec.gaze)
    points = features.points(layout)
    return points, visibility(face.occluder_mask, points)
