"""3-D face geometry of the synthetic renderer: the 68-point template, identity and expression deformations,
head pose, and the outlines (head, jaw, neck, ears, hair, eye and nose details) that the renderer fills.

Head frame: x to the image right, y down, z toward the camera; unit = half the face width at eye level.
The jaw and head outlines are silhouettes of vertical elliptic cross-sections, recomputed for every view,
so that under yaw the far-side jaw points slide along the visible contour as 300W annotators place them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from landmarkflow.data.synthetic.face_mesh import Surface, face_mesh, reshape, vertex_normals
from landmarkflow.layouts import IBUG_68

# iBUG 68 mean shape (symmetrised 300W mean) with a depth per point; mouth closed, jaw z unused (see _jaw).
TEMPLATE_68 = np.array(
    [
        *[(-1.000, -0.001, 0), (-0.995, 0.265, 0), (-0.969, 0.533, 0), (-0.916, 0.797, 0)],
        *[(-0.814, 1.043, 0), (-0.655, 1.259, 0), (-0.462, 1.443, 0), (-0.246, 1.593, 0)],
        *[(0.000, 1.636, 0), (0.246, 1.593, 0), (0.462, 1.443, 0), (0.655, 1.259, 0)],
        *[(0.814, 1.043, 0), (0.916, 0.797, 0), (0.969, 0.533, 0), (0.995, 0.265, 0), (1.000, -0.001, 0)],
        # brows 17-26
        *[(-0.793, -0.200, -0.10), (-0.668, -0.298, 0.02), (-0.500, -0.323, 0.08), (-0.328, -0.295, 0.11)],
        *[(-0.165, -0.226, 0.12), (0.165, -0.226, 0.12), (0.328, -0.295, 0.11), (0.500, -0.323, 0.08)],
        *[(0.668, -0.298, 0.02), (0.793, -0.200, -0.10)],
        # nose bridge 27-30, nose bottom 31-35
        *[(0.000, -0.028, 0.12), (0.000, 0.146, 0.25), (0.000, 0.320, 0.38), (0.000, 0.497, 0.50)],
        *[(-0.194, 0.609, 0.25), (-0.101, 0.647, 0.31), (0.000, 0.679, 0.35), (0.101, 0.647, 0.31)],
        (0.194, 0.609, 0.25),
        # eyes 36-41 and 42-47
        *[(-0.595, -0.011, -0.12), (-0.490, -0.073, -0.02), (-0.362, -0.071, 0.00), (-0.255, 0.011, -0.04)],
        *[(-0.373, 0.035, -0.01), (-0.497, 0.033, -0.04), (0.255, 0.011, -0.04), (0.362, -0.071, 0.00)],
        *[(0.490, -0.073, -0.02), (0.595, -0.011, -0.12), (0.497, 0.033, -0.04), (0.373, 0.035, -0.01)],
        # outer lip 48-59
        *[(-0.388, 0.923, 0.14), (-0.247, 0.866, 0.25), (-0.103, 0.840, 0.30), (0.000, 0.865, 0.31)],
        *[(0.103, 0.840, 0.30), (0.247, 0.866, 0.25), (0.388, 0.923, 0.14), (0.253, 1.068, 0.22)],
        *[(0.112, 1.133, 0.27), (0.000, 1.144, 0.28), (-0.112, 1.133, 0.27), (-0.253, 1.068, 0.22)],
        # inner lip 60-67, closed: upper and lower inner contours meet on the lip line
        *[(-0.328, 0.932, 0.16), (-0.104, 0.957, 0.26), (0.000, 0.962, 0.28), (0.104, 0.957, 0.26)],
        *[(0.328, 0.932, 0.16), (0.104, 0.957, 0.26), (0.000, 0.962, 0.28), (-0.104, 0.957, 0.26)],
    ],
    dtype=np.float64,
)

GROUPS = {name: np.array(idx) for name, idx in IBUG_68.groups.items()}
JAW = GROUPS["jaw"]
BROWS = np.r_[GROUPS["right_brow"], GROUPS["left_brow"]]
EYES = (GROUPS["right_eye"], GROUPS["left_eye"])
NOSE = np.r_[GROUPS["nose_bridge"], GROUPS["nose_bottom"]]
MOUTH = np.r_[GROUPS["outer_lip"], GROUPS["inner_lip"]]
CHIN_Y = 1.636
PIVOT = np.array([0.0, 0.5, -0.9])  # the head turns about its centre, behind the face
CAMERA_DISTANCE = 12.0  # in face units: mild perspective
MEAN_MOUTH_OPEN = 0.18  # an ordinary face's mean `Expression.mouth_open` (params.sample_spec)
HAIR_KINDS = ("none", "short", "long")
# The skull's cross-sections reach SKULL_FRONT x their half-width in front of their centre and SKULL_BACK x behind
# it: a head ~1.4x as long as it is wide, so that a turned head shows its side and back, not a mask's edge.
SKULL_FRONT, SKULL_BACK = 0.55, 2.3
EAR_ROOT = (0.945, 0.3, -1.2)  # x (of the half-width), y, z: on the skull's side, brow to nose bottom, behind


@dataclass(frozen=True)
class Identity:
    """Who the face is: proportions relative to the mean shape (1 or 0 = mean)."""

    face_width: float = 1.0
    jaw_length: float = 1.0
    jaw_squareness: float = 0.0  # > 0 square jaw, < 0 pointed chin
    eye_spacing: float = 0.0
    eye_size: float = 1.0
    eye_tilt: float = 0.0  # > 0 raises the outer eye corners
    brow_height: float = 0.0
    brow_arch: float = 0.0
    nose_length: float = 1.0
    nose_width: float = 1.0
    mouth_width: float = 1.0
    lip_thickness: float = 1.0
    mouth_height: float = 0.0  # > 0 moves the mouth down


@dataclass(frozen=True)
class Expression:
    """What the face does: 0 is neutral (eye_open 1 = normally open)."""

    mouth_open: float = 0.0  # 0 closed .. 1 wide open (jaw drop)
    smile: float = 0.0  # < 0 frown, > 0 smile
    brow_raise: float = 0.0  # < 0 frown, > 0 surprise
    eye_open: float = 1.0  # 0 closed .. 1.3 wide


@dataclass(frozen=True)
class Pose:
    """Head rotation in degrees: yaw > 0 turns the nose to the image right, pitch > 0 lifts the chin, roll > 0
    rotates the face clockwise on screen."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0


@dataclass(frozen=True)
class Hair:
    """Hair shape: `kind` none, short or long; hairline = y of the hairline at the forehead centre."""

    kind: str = "short"
    hairline: float = -1.15
    volume: float = 0.08

    def __post_init__(self) -> None:
        if self.kind not in HAIR_KINDS:
            raise ValueError(f"unknown hair kind {self.kind!r}: expected one of {', '.join(HAIR_KINDS)}")


@dataclass(frozen=True)
class Glasses:
    """Clear eyeglasses (face units): each lens's half-width and half-height, and how square it is (a
    superellipse exponent: 2 = ellipse, 5 = nearly a rectangle). They follow the head's pose and leave every
    landmark visible, as 300W annotates faces behind clear glasses."""

    width: float = 0.24
    height: float = 0.16
    squareness: float = 3.0


@dataclass
class FaceGeometry:
    """A posed face in 2-D: the 68 landmarks and every outline the renderer draws, all in one frame."""

    landmarks: np.ndarray
    head: np.ndarray
    neck: np.ndarray
    body: np.ndarray
    ears_behind: list[np.ndarray]  # ears the head hides but for what sticks out of its outline
    ears_on_head: list[np.ndarray]  # ears on the side of the head that faces the camera
    hair: np.ndarray | None
    long_hair: np.ndarray | None
    brow_lower: np.ndarray
    irises: list[np.ndarray]
    pupils: list[np.ndarray]
    nostrils: list[np.ndarray]
    nose_wings: list[np.ndarray]
    nose_sides: list[np.ndarray]
    face_centre: np.ndarray
    lenses: list[np.ndarray]
    frame: list[np.ndarray]
    surface: Surface
    units_per_face: float = 1.0  # length of one face unit in this frame (for stroke widths)

    def transformed(self, scale: float, offset: np.ndarray) -> FaceGeometry:
        """The same face scaled then shifted (unit frame -> pixels)."""
        changes: dict[str, object] = {"units_per_face": self.units_per_face * scale}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                changes[f.name] = value * scale + offset
            elif isinstance(value, list):
                changes[f.name] = [v * scale + offset for v in value]
            elif isinstance(value, Surface):
                changes[f.name] = value.transformed(scale, offset)
        return replace(self, **changes)


def deform(identity: Identity, expression: Expression, jitter: np.ndarray | None = None) -> np.ndarray:
    """The 68 template points (3-D) reshaped by identity and expression; the jaw keeps its frontal outline."""
    p = TEMPLATE_68.copy()
    side = np.sign(p[:, 0])
    _apply_identity(p, identity, side)
    _apply_expression(p, expression, side)
    if jitter is not None:
        p[:, :2] += jitter
    p[JAW[8], 0] = 0.0  # the chin stays on the midline so that the jaw silhouette is well defined
    return p


def _apply_identity(p: np.ndarray, ident: Identity, side: np.ndarray) -> None:
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    lower_jaw = JAW[y[JAW] > 0]
    x[JAW] *= ident.face_width
    y[lower_jaw] *= ident.jaw_length
    square = np.array([0, 0, 0, 0.4, 0.8, 1.0, 0.7, 0.3, 0, 0.3, 0.7, 1.0, 0.8, 0.4, 0, 0, 0])
    x[JAW] += side[JAW] * ident.jaw_squareness * 0.07 * square
    bridge_top = y[27]
    y[NOSE] = bridge_top + (y[NOSE] - bridge_top) * ident.nose_length
    z[28:31] *= 0.85 + 0.15 * ident.nose_length
    x[31:36] *= ident.nose_width
    for eye in EYES:
        centre = p[eye, :2].mean(axis=0)
        p[eye, :2] = centre + (p[eye, :2] - centre) * ident.eye_size
        x[eye] += side[eye] * ident.eye_spacing
    y[[36, 45]] -= ident.eye_tilt
    y[[37, 44, 41, 46]] -= ident.eye_tilt * 0.5
    x[BROWS] += side[BROWS] * ident.eye_spacing * 0.7
    y[BROWS] -= ident.brow_height
    y[[19, 24]] -= ident.brow_arch
    y[[18, 20, 23, 25]] -= ident.brow_arch * 0.6
    lip_line = y[62]
    upper, lower = np.arange(49, 54), np.arange(55, 60)
    y[upper] = lip_line + (y[upper] - lip_line) * ident.lip_thickness
    y[lower] = lip_line + (y[lower] - lip_line) * ident.lip_thickness
    x[MOUTH] *= ident.mouth_width
    y[MOUTH] *= 1 + 0.75 * (ident.jaw_length - 1)
    y[MOUTH] += ident.mouth_height + 0.3 * max(0.0, ident.nose_length - 1)


def _apply_expression(p: np.ndarray, expr: Expression, side: np.ndarray) -> None:
    x, y = p[:, 0], p[:, 1]
    drop = 0.30 * expr.mouth_open
    # The template's chin and lower lip are the 300W mean, its open mouths included: they start from a closed
    # mouth, lifted by the drop of the mean opening, so that the ordinary faces' mean chin is the template's.
    lift = 0.30 * MEAN_MOUTH_OPEN
    chin_weight = np.clip((y[JAW] - 0.6) / (y[JAW[8]] - 0.6), 0.0, 1.0)
    y[JAW] += (drop - lift) * chin_weight
    x[JAW] *= 1 - 0.04 * expr.mouth_open * chin_weight
    y[[65, 66, 67]] += drop * np.array([0.9, 1.0, 0.9])
    y[np.arange(55, 60)] += (drop - lift) * np.array([0.85, 0.95, 1.0, 0.95, 0.85])
    y[[60, 64]] += drop * 0.3
    y[[48, 54]] += drop * 0.2
    y[[61, 62, 63]] -= 0.02 * expr.mouth_open
    x[[48, 54, 60, 64]] *= 1 - 0.12 * expr.mouth_open
    smile = expr.smile
    x[[48, 54]] += side[[48, 54]] * 0.06 * smile
    y[[48, 54]] -= 0.07 * smile
    x[[60, 64]] += side[[60, 64]] * 0.05 * smile
    y[[60, 64]] -= 0.06 * smile
    y[[49, 53, 55, 59]] -= 0.03 * smile
    x[[49, 53, 55, 59]] += side[[49, 53, 55, 59]] * 0.02 * smile
    y[[61, 63, 65, 67]] -= 0.02 * smile
    y[[40, 41, 46, 47]] -= 0.012 * max(smile, 0.0)
    raise_ = expr.brow_raise
    if raise_ >= 0:
        y[BROWS] -= 0.10 * raise_ * np.array([0.8, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8])
    else:
        frown = -raise_
        y[[20, 21, 22, 23]] += 0.07 * frown * np.array([0.6, 1.0, 1.0, 0.6])
        x[[21, 22]] -= side[[21, 22]] * 0.03 * frown
    for eye, upper, lower in (
        (EYES[0], [37, 38], [40, 41]),
        (EYES[1], [43, 44], [46, 47]),
    ):
        outer, inner = eye[0], eye[3]
        line = y[outer] + (y[inner] - y[outer]) * (x[upper] - x[outer]) / (x[inner] - x[outer])
        y[upper] = line + (y[upper] - line) * expr.eye_open
        lower_line = y[outer] + (y[inner] - y[outer]) * (x[lower] - x[outer]) / (x[inner] - x[outer])
        y[lower] = lower_line + (y[lower] - lower_line) * min(1.0, 0.5 + 0.5 * expr.eye_open)


def rotation(pose: Pose) -> np.ndarray:
    """Head-to-camera rotation R = Rz(roll) Ry(yaw) Rx(pitch)."""
    yaw, pitch, roll = (math.radians(v) for v in (pose.yaw, pose.pitch, pose.roll))
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def silhouette(
    a: np.ndarray,
    y: np.ndarray,
    zc: np.ndarray,
    c: np.ndarray,
    side: np.ndarray,
    view: np.ndarray,
    c_back: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Contour points of horizontal ellipses (half-width a, depth c, centre depth zc) seen from `view` (head
    frame): where the surface normal is perpendicular to the view, on the right (+1) or left (-1) side.
    `c_back` (default `c`) is the depth behind the centre: a skull reaches far further behind its widest
    point than in front of it. Returns the 3-D points and their angles on the ellipses (0 = front)."""
    depth = c if c_back is None else np.where(view[0] * side > 0, c_back, c)
    phi_right = np.arctan2(view[2] * a, -view[0] * depth)
    phi = np.where(side > 0, phi_right, phi_right - np.pi)
    return np.stack([a * np.sin(phi), y, zc + depth * np.cos(phi)], axis=-1), phi


def _section(
    y: np.ndarray, a: np.ndarray, zc: np.ndarray, c: np.ndarray, view: np.ndarray, c_back: np.ndarray | None = None
) -> np.ndarray:
    """Closed outline of a vertical stack of ellipses: right side top to bottom, then left side bottom to top."""
    right, _ = silhouette(a, y, zc, c, np.ones_like(a), view, c_back)
    left, _ = silhouette(a, y, zc, c, -np.ones_like(a), view, c_back)
    return np.concatenate([right, left[::-1]])


def _skull(width: float, extra: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cross-sections (y, half-width, centre depth) from ear level up over the top of the head."""
    t = np.linspace(0.0, 1.45, 12)
    y = -(1.75 + extra) * np.sin(t)
    a = width * np.cos(t) ** 0.55 + extra
    zc = -0.45 - 0.3 * np.sin(t) ** 2
    return y, a, zc


def _skull_sides(y: np.ndarray, a: np.ndarray, zc: np.ndarray, view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The right and left silhouettes of skull-shaped cross-sections (SKULL_FRONT deep in front, SKULL_BACK behind)."""
    right, _ = silhouette(a, y, zc, SKULL_FRONT * a, np.ones_like(a), view, SKULL_BACK * a)
    left, _ = silhouette(a, y, zc, SKULL_FRONT * a, -np.ones_like(a), view, SKULL_BACK * a)
    return right, left


def build_face(
    identity: Identity,
    expression: Expression,
    pose: Pose,
    hair: Hair,
    jitter: np.ndarray | None = None,
    glasses: Glasses | None = None,
) -> FaceGeometry:
    """Deform, pose and project a face: every outline in one 2-D frame (face units, y down)."""
    points = deform(identity, expression, jitter)
    rot = rotation(pose)
    view = rot.T @ np.array([0.0, 0.0, 1.0])

    # The jaw's cross-sections: near the ears centred far back (the jaw's angle is under the ear, not beside the
    # cheek), deep in front and shallow behind, so a turned face's near side widens out to its ear as on a photo
    # and its far side tucks in toward the eye's outer corner; at the chin small and forward, as before.
    low = np.clip(points[JAW, 1] / CHIN_Y, 0.0, 1.0) ** 2  # 0 at the ears, 1 at the chin
    jaw_zc = -0.9 + 1.15 * low
    depth = np.r_[jaw_zc, points[17:, 2]]  # every point's depth in a frontal view
    _unproject(points, depth)
    width = abs(points[JAW[0], 0])
    jaw_a = np.abs(points[JAW, 0])
    jaw_y = points[JAW, 1]
    front, back = jaw_a * (1.0 - 0.45 * low), jaw_a * (0.4 + 0.15 * low)
    surface = _surface(np.c_[points[:, :2], depth], rot)
    points[JAW], _ = silhouette(jaw_a, jaw_y, jaw_zc, front, np.sign(points[JAW, 0]), view, back)

    skull_y, skull_a, skull_zc = _skull(width, 0.0)
    right_top, left_top = _skull_sides(skull_y, skull_a, skull_zc, view)
    # jaw from the left ear (0) round the chin to the right ear (16), then up over the top of the head
    head = np.concatenate([points[JAW], right_top[1:], left_top[::-1][:-1]])

    # from under the skull's back (behind the ears, hidden by the face when frontal) down to the collar
    neck_y = np.array([-0.1, 0.7, 1.6, 2.2, 2.8])
    neck_a = np.array([0.85, 0.75, 0.7, 0.7, 0.7]) * width
    neck = _section(neck_y, neck_a, np.array([-1.3, -1.1, -1.0, -1.0, -1.0]), np.array([1.1, 0.9, 0.8, 0.8, 0.8]), view)
    body_y = np.array([2.2, 2.5, 3.0, 4.5, 9.0])
    body_a = np.array([0.6, 1.6, 2.3, 2.6, 2.7]) * width
    body = _section(body_y, body_a, np.full(5, -0.7), 0.45 * body_a, view)

    ears_behind, ears_on_head = [], []
    ear_t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    for s in (-1.0, 1.0):
        outward = np.array([0.7 * s, 0.0, -0.71])
        base = np.array([s * EAR_ROOT[0] * width, EAR_ROOT[1], EAR_ROOT[2]])
        u = 0.14 + 0.1 * np.cos(ear_t)
        v = 0.36 * np.sin(ear_t)
        ear = base + u[:, None] * outward + v[:, None] * np.array([0.0, 1.0, 0.0])
        # the skull's normal at the ear's root: facing the camera, the ear lies on the head; else behind it
        normal = np.array([base[0] / width**2, 0.0, (base[2] - skull_zc[0]) / (SKULL_BACK * width) ** 2])
        (ears_on_head if normal @ view > 0 else ears_behind).append(ear)

    hair_cap = long_hair = None
    if hair.kind != "none":
        hair_cap = _hair_cap(hair, width, view)
        if hair.kind == "long":
            y, a, zc = _skull(width, hair.volume + 0.1)
            y = np.concatenate([y[::-1], [0.6, 1.4, 2.1]])
            a = np.concatenate([a[::-1], np.array([0.2, 0.25, 0.2]) + width + hair.volume])
            zc = np.concatenate([zc[::-1], [-0.6, -0.7, -0.8]])
            long_hair = _section(y, a, zc, 0.5 * a, view, SKULL_BACK * a)

    thickness = np.array([0.03, 0.045, 0.055, 0.065, 0.07, 0.07, 0.065, 0.055, 0.045, 0.03])
    brow_lower = points[BROWS] + thickness[:, None] * np.array([0.0, 1.0, 0.0])

    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles), np.zeros(16)], axis=-1)
    irises, pupils = [], []
    for eye in EYES:
        corners = points[eye[[0, 3]]]
        centre = corners.mean(axis=0) + np.array([0.0, 0.004, 0.03])
        radius = 0.2 * np.linalg.norm(corners[1, :2] - corners[0, :2])
        irises.append(centre + radius * circle)
        pupils.append(centre + 0.45 * radius * circle)

    nostrils, wings = [], []
    for s, wing, mid in ((-1.0, 31, 32), (1.0, 35, 34)):
        centre = (points[wing] + points[mid]) / 2 + np.array([0.0, -0.022, 0.01])
        nostrils.append(centre + circle * np.array([0.045 * identity.nose_width, 0.022, 0.0]))
        top = points[wing] + np.array([-0.02 * s, -0.13, -0.01])
        out = points[wing] + np.array([0.035 * s, -0.06, -0.03])
        wings.append(np.stack([top, out, points[wing]]))
    nose_sides = [
        np.stack([points[39] + [0.05, 0.04, 0.06], points[29] + [-0.08, 0.0, -0.1], points[31] + [0.02, -0.1, 0.0]]),
        np.stack([points[42] + [-0.05, 0.04, 0.06], points[29] + [0.08, 0.0, -0.1], points[35] + [-0.02, -0.1, 0.0]]),
    ]

    lenses, frame = _glasses(glasses, points, width, view) if glasses is not None else ([], [])

    def project(p: np.ndarray) -> np.ndarray:
        return _project(p, rot)

    return FaceGeometry(
        landmarks=project(points),
        head=project(head),
        neck=project(neck),
        body=project(body),
        ears_behind=[project(e) for e in ears_behind],
        ears_on_head=[project(e) for e in ears_on_head],
        hair=None if hair_cap is None else project(hair_cap),
        long_hair=None if long_hair is None else project(long_hair),
        brow_lower=project(brow_lower),
        irises=[project(i) for i in irises],
        pupils=[project(p) for p in pupils],
        nostrils=[project(n) for n in nostrils],
        nose_wings=[project(w) for w in wings],
        nose_sides=[project(n) for n in nose_sides],
        face_centre=project(np.array([[0.0, 0.55, 0.2]]))[0],
        lenses=[project(lens) for lens in lenses],
        frame=[project(part) for part in frame],
        surface=surface,
    )


def _unproject(points: np.ndarray, depth: np.ndarray) -> None:
    """Widen each point (in place) by as much as the camera will shrink it at its frontal `depth`, so that a frontal
    face is drawn in the template's proportions: the template is the mean of photographs, their perspective
    included, and the jaw's angles lie 0.8 face units further back than the eyes (drawn 6% smaller)."""
    points[:, :2] *= ((CAMERA_DISTANCE - depth) / CAMERA_DISTANCE)[:, None]


def _surface(landmarks_3d: np.ndarray, rot: np.ndarray) -> Surface:
    """The face mesh reshaped onto this face's landmarks (the jaw at its frontal outline, where the mesh's own
    silhouette takes over under yaw), posed and projected like the landmarks."""
    mesh = face_mesh()
    vertices = reshape(mesh, landmarks_3d)
    world = _posed(vertices, rot)
    normals = vertex_normals(vertices, mesh.triangles) @ rot.T
    return Surface(_perspective(world), normals, world[:, 2])


def _hair_cap(hair: Hair, width: float, view: np.ndarray) -> np.ndarray:
    """Hair over the top of the head: its outer outline from one ear over the top to the other, then back along
    the hairline on the forehead (which ends at the temples, on the face contour)."""
    y, a, zc = _skull(width, hair.volume)
    y = np.concatenate([[0.1], y[1:]])
    a = np.concatenate([[width + 0.6 * hair.volume], a[1:]])
    right, left = _skull_sides(y, a, zc, view)
    side_y = -0.2
    u = np.linspace(1.0, -1.0, 15)
    line_y = hair.hairline + (side_y - hair.hairline) * np.abs(u) ** 3
    skull_y, skull_a, skull_zc = _skull(width, 0.0)
    line_a = np.interp(-line_y, -skull_y, skull_a)
    line_zc = np.interp(-line_y, -skull_y, skull_zc)
    line_c = 0.55 * line_a
    _, phi_right = silhouette(line_a, line_y, line_zc, line_c, np.ones_like(u), view)
    _, phi_left = silhouette(line_a, line_y, line_zc, line_c, -np.ones_like(u), view)
    phi = np.clip(u * np.pi / 2, phi_left, phi_right)
    hairline = np.stack([line_a * np.sin(phi), line_y, line_zc + line_c * np.cos(phi)], axis=-1)
    return np.concatenate([left, right[::-1], hairline])


def _rim(glasses: Glasses, centre: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points of a lens rim at angles `t` (0 = toward the image right, pi/2 = down): a superellipse around
    `centre` (x, y) whose depth curves back with the face."""
    power = 2.0 / glasses.squareness
    x = centre[0] + glasses.width * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** power
    y = centre[1] + glasses.height * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** power
    return np.stack([x, y, 0.3 - 0.35 * x**2], axis=-1)


def _glasses(
    glasses: Glasses, points: np.ndarray, width: float, view: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The two lens rims (closed, 3-D) in front of the eyes, the bridge over the nose between their upper inner
    corners, and each temple arm from its hinge back to the ear where that side faces the camera."""
    up = -0.3  # radians above the horizontal: where bridge and hinges meet the rims
    centres = [points[eye[[0, 3]], :2].mean(axis=0) + np.array([0.0, 0.03]) for eye in EYES]
    lenses = [_rim(glasses, c, np.linspace(0.0, 2 * np.pi, 24, endpoint=False)) for c in centres]
    inner = [_rim(glasses, centres[0], np.array([up]))[0], _rim(glasses, centres[1], np.array([np.pi - up]))[0]]
    middle = [0.0, min(inner[0][1], inner[1][1]) - 0.02, max(inner[0][2], points[28, 2]) + 0.02]
    frame = [np.stack([inner[0], middle, inner[1]])]
    for centre, side in zip(centres, (-1.0, 1.0), strict=True):
        if side * view[0] > -0.1:  # the far arm hides behind the head
            hinge = _rim(glasses, centre, np.array([np.pi / 2 - side * (np.pi / 2 - up)]))[0]
            frame.append(np.stack([hinge, [side * (width + 0.04), hinge[1] + 0.1, -0.45]]))
    return lenses, frame


def _posed(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Head-frame points rotated about the head pivot into the camera frame: (N, 3) -> (N, 3)."""
    return (points - PIVOT) @ rot.T + PIVOT


def _perspective(world: np.ndarray) -> np.ndarray:
    """Camera-frame points projected with a mild perspective: (N, 3) -> (N, 2)."""
    scale = CAMERA_DISTANCE / (CAMERA_DISTANCE - world[:, 2])
    return world[:, :2] * scale[:, None]


def _project(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Rotate about the head pivot and project with a mild perspective: (N, 3) -> (N, 2)."""
    return _perspective(_posed(points, rot))
