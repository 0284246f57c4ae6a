"""Rasterise a `FaceSpec` with OpenCV: every landmark sits on drawn structure (jaw edge, brow edge, eyelids,
nose outline, lips), and occluders record which points they cover.

Drawing uses 4 fractional bits (cv2 `shift`), so outlines pass through the float landmarks to 1/16 px.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from landmarkflow.data.synthetic.face3d import FaceGeometry, build_face
from landmarkflow.data.synthetic.params import Appearance, Colour, FaceSpec, Occluder
from landmarkflow.data.synthetic.photos import photo_background
from landmarkflow.data.synthetic.shading import shade

SHIFT = 4
_ONE = 1 << SHIFT
MARGIN = 2.0  # pixels kept between the landmark box and the image border
PHOTO_SHARE = 0.7  # backgrounds that are photographs
UNIFORM_BYTE_STD = 73.9  # standard deviation of uniform integers 0..255
WRINKLE_DARKENING = 0.35  # how much the deepest crease darkens the skin


@dataclass
class RenderedFace:
    """A rendered image (H, W, 3) BGR uint8 with its landmarks (68, 2), visibility and occluder mask."""

    image: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    occluder_mask: np.ndarray
    geometry: FaceGeometry


def _fix(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _fill(image: np.ndarray, points: np.ndarray, colour: Colour | float, aa: bool = True) -> None:
    cv2.fillPoly(image, [_fix(points)], colour, cv2.LINE_AA if aa else cv2.LINE_8, SHIFT)


def _stroke(
    image: np.ndarray, points: np.ndarray, colour: Colour | float, thickness: int, closed: bool = False, aa: bool = True
) -> None:
    cv2.polylines(image, [_fix(points)], closed, colour, max(1, thickness), cv2.LINE_AA if aa else cv2.LINE_8, SHIFT)


def _ellipse(image: np.ndarray, centre: np.ndarray, axes: tuple[float, float], colour: Colour) -> None:
    cv2.ellipse(
        image,
        tuple(_fix(centre).ravel()),
        tuple(_fix(np.array(axes)).ravel()),
        0,
        0,
        360,
        colour,
        -1,
        cv2.LINE_AA,
        SHIFT,
    )


def _scaled(colour: Colour, factor: float) -> Colour:
    return tuple(min(255.0, c * factor) for c in colour)


@lru_cache(maxsize=8)
def _catmull_rom_basis(steps: int) -> np.ndarray:
    """(steps, 4) weights of the 4 control points for t = 0, 1/steps, ..."""
    t = np.linspace(0.0, 1.0, steps, endpoint=False)
    return 0.5 * np.stack([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -(t**2) + t**3], 1)


@lru_cache(maxsize=64)
def _control_index(count: int, closed: bool) -> np.ndarray:
    """(segments, 4) indices of each segment's control points: into the points (closed) or into the points
    padded with one reflected point at each end (open)."""
    if closed:
        return (np.arange(count)[:, None] + np.arange(-1, 3)[None, :]) % count
    return np.arange(count - 1)[:, None] + np.arange(4)[None, :]


def spline(points: np.ndarray, closed: bool = False, steps: int = 6) -> np.ndarray:
    """Catmull-Rom curve through `points` (it passes through every one of them)."""
    p = np.asarray(points, dtype=np.float64)
    if closed:
        controls = p[_control_index(len(p), True)]
    else:
        padded = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
        controls = padded[_control_index(len(p), False)]
    curve = (_catmull_rom_basis(steps) @ controls).reshape(-1, 2)
    return curve if closed else np.concatenate([curve, p[-1:]])


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


def render_face(spec: FaceSpec, image_size: int = 256) -> RenderedFace:
    """Render one face: background, body, head, features, light, occluders, camera effects."""
    rng = np.random.default_rng(spec.detail_seed)
    jitter = rng.normal(0.0, 0.006, size=(68, 2))
    face = build_face(spec.identity, spec.expression, spec.pose, spec.hair, jitter, spec.glasses)
    geo = _place(face, spec, image_size)
    app = spec.appearance
    image = _background(rng, image_size)
    unit = geo.units_per_face

    _fill(image, geo.body, app.clothes)
    strands = _strands(rng, image_size, unit, spec.pose.roll)
    if geo.long_hair is not None:
        _fill_textured(image, geo.long_hair, _scaled(app.hair, 0.85), strands)
    _fill(image, geo.neck, _scaled(app.skin, app.neck_shade))
    for ear in geo.ears_behind:
        _draw_ear(image, ear, app.skin, unit)
    head = np.concatenate([spline(geo.head[:17], steps=4), geo.head[17:]])
    _fill(image, head, app.skin)
    for ear in geo.ears_on_head:
        _draw_ear(image, ear, app.skin, unit)
    _draw_wrinkles(image, geo, head, app.wrinkles)  # before the hair, which covers the forehead's
    if geo.hair is not None:
        _fill_textured(image, spline(geo.hair, closed=True, steps=3), app.hair, strands)
    if app.jaw_line < 1.0:
        _stroke(image, spline(geo.landmarks[:17], steps=4), _scaled(app.skin, app.jaw_line), round(unit * 0.025))
    _draw_brows(image, geo, app.brows, app.brow_thickness)
    _draw_nose(image, geo, app.skin, unit, spec.lighting.angle)
    for k in range(2):
        _draw_eye(image, geo, k, spec, unit)
    _draw_mouth(image, geo, spec, unit)
    _draw_facial_hair(image, geo, app, strands)
    _draw_glasses(image, geo, app, rng)
    image = _light(image, geo, head, spec)
    mask = np.zeros(image.shape[:2], np.uint8)
    for occluder in spec.occluders:
        _draw_occluder(image, mask, geo, occluder, rng)
    image = _camera(image, spec, rng)
    visible = visibility(mask, geo.landmarks)
    return RenderedFace(image=image, landmarks=geo.landmarks, visible=visible, occluder_mask=mask, geometry=geo)


def _draw_ear(image: np.ndarray, ear: np.ndarray, skin: Colour, unit: float) -> None:
    _fill(image, ear, _scaled(skin, 0.88))
    _stroke(image, ear, _scaled(skin, 0.7), round(unit * 0.02), closed=True)


def _strands(rng: np.random.Generator, size: int, unit: float, roll: float) -> np.ndarray:
    """A (size, size) gain around 1 with streaks along the head's vertical: hair instead of a flat colour."""
    low = max(size // 2, 8)
    noise = rng.normal(0.0, 1.0, size=(low, low)).astype(np.float32)
    length = max(3, round(unit * 0.4 * low / size)) | 1
    kernel = np.zeros((length, length), np.float32)
    kernel[:, length // 2] = 1.0 / length
    turn = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), -roll, 1.0)
    streaks = cv2.filter2D(noise, -1, cv2.warpAffine(kernel, turn, (length, length)))
    streaks /= max(float(streaks.std()), 1e-6)
    return cv2.resize(1.0 + 0.22 * streaks, (size, size), interpolation=cv2.INTER_LINEAR)


def _fill_textured(image: np.ndarray, points: np.ndarray, colour: Colour, texture: np.ndarray) -> None:
    """Fill like `_fill`, then modulate the filled pixels by `texture` (a gain per pixel)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    _fill(mask, points, 255, aa=False)
    _fill(image, points, colour)
    inside = mask > 0
    image[inside] = np.clip(image[inside] * texture[inside, None], 0, 255).astype(np.uint8)


def visibility(mask: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A point is visible unless the occluder mask covers the pixel it falls in."""
    cols = np.clip(np.round(landmarks[:, 0]).astype(int), 0, mask.shape[1] - 1)
    rows = np.clip(np.round(landmarks[:, 1]).astype(int), 0, mask.shape[0] - 1)
    return mask[rows, cols] == 0


def _place(geo: FaceGeometry, spec: FaceSpec, size: int) -> FaceGeometry:
    """Scale and shift so the landmark box has the spec's size and position and stays inside the image."""
    low, high = geo.landmarks.min(axis=0), geo.landmarks.max(axis=0)
    room = size - 1 - 2 * MARGIN
    scale = min(spec.face_size * size, room) / float((high - low).max())
    free = room - (high - low) * scale
    offset = MARGIN + free * np.asarray(spec.position) - low * scale
    return geo.transformed(scale, offset)


def _gradient_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour gradient with blotches and texture, made at 1/8 resolution and upsampled (it is smooth)."""
    low = max(size // 8, 4)
    xs, ys = _grid(low)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xs * math.cos(angle) + ys * math.sin(angle)) / low
    c1, c2 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    small = c1 + (c2 - c1) * ramp[..., None]
    blotches = rng.normal(0.0, rng.uniform(5, 40), size=(5, 5, 3)).astype(np.float32)
    small += cv2.resize(blotches, (low, low), interpolation=cv2.INTER_CUBIC)
    small += rng.normal(0.0, rng.uniform(0, 20), size=(low, low, 1)).astype(np.float32)
    return cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A photo crop (most of the time) or a gradient, then random shapes: clutter with edges that are not faces."""
    if rng.uniform() < PHOTO_SHARE:
        image = photo_background(rng, size)
        shapes = int(rng.integers(0, 4))
    else:
        image = _gradient_background(rng, size)
        shapes = int(rng.integers(2, 10))
    for _ in range(shapes):
        colour = tuple(rng.uniform(0, 255, 3).tolist())
        kind = rng.integers(4)
        centre = rng.uniform(-0.1, 1.1, 2) * size
        extent = rng.uniform(0.05, 0.4) * size
        if kind == 0:
            cv2.circle(image, _fix(centre).ravel(), round(extent * _ONE / 2), colour, -1, cv2.LINE_AA, SHIFT)
        elif kind == 1:
            corner = centre + rng.uniform(-1, 1, 2) * extent
            cv2.rectangle(image, _fix(centre).ravel(), _fix(corner).ravel(), colour, -1, cv2.LINE_AA, SHIFT)
        elif kind == 2:
            end = centre + rng.uniform(-1, 1, 2) * extent * 2
            _stroke(image, np.stack([centre, end]), colour, int(rng.integers(1, 6)))
        else:
            _fill(image, centre + rng.uniform(-1, 1, (int(rng.integers(3, 7)), 2)) * extent, colour)
    return image


def brow_lower_edge(geo: FaceGeometry, thickness: float) -> np.ndarray:
    """(10, 2) points of the drawn lower brow edge, one under each of landmarks 17-26: the brows' thickness
    scales the geometry's full-thickness edge (derived layouts annotate this edge too)."""
    top = geo.landmarks[17:27]
    return top + (geo.brow_lower - top) * thickness


def _draw_brows(image: np.ndarray, geo: FaceGeometry, colour: Colour, thickness: float) -> None:
    """Brows as filled shapes whose upper edge runs through landmarks 17-21 and 22-26."""
    upper_edge, lower_edge = geo.landmarks[17:27], brow_lower_edge(geo, thickness)
    for brow in (slice(0, 5), slice(5, 10)):
        outline = np.concatenate([spline(upper_edge[brow], steps=4), spline(lower_edge[brow], steps=4)[::-1]])
        _fill(image, outline, colour)


def _draw_nose(image: np.ndarray, geo: FaceGeometry, skin: Colour, unit: float, light_angle: float) -> None:
    """Bridge highlight through 27-30, side shadows, tip highlight, and the nostril outline through 31-35."""
    lm = geo.landmarks
    # the nose as a solid: under yaw its tip stands out of the cheek contour, so it must be skin, not background
    solid = np.concatenate([geo.nose_sides[0][:2], geo.nose_wings[0][1:2], lm[31:36], geo.nose_wings[1][1:2]])
    solid = np.concatenate([solid, geo.nose_sides[1][:2][::-1], lm[27:31]])
    _fill(image, cv2.convexHull(solid.astype(np.float32)).reshape(-1, 2), skin)
    lit_side = 1 if math.cos(math.radians(light_angle)) > 0 else 0
    for k, side in enumerate(geo.nose_sides):
        _stroke(image, spline(side, steps=5), _scaled(skin, 0.93 if k == lit_side else 0.75), round(unit * 0.03))
    _stroke(image, lm[27:31], _scaled(skin, 1.06), round(unit * 0.025))
    _ellipse(image, lm[30], (unit * 0.07, unit * 0.05), _scaled(skin, 1.12))
    for nostril in geo.nostrils:
        _fill(image, nostril, _scaled(skin, 0.3))
    left, right = geo.nose_wings
    outline = np.concatenate([left[:2], lm[31:36], right[:2][::-1]])
    _stroke(image, spline(outline, steps=4), _scaled(skin, 0.55), round(unit * 0.03))


def _paint_inside(image: np.ndarray, outline: np.ndarray, paint: Callable[[np.ndarray, np.ndarray], None]) -> None:
    """Let `paint(layer, origin)` draw on a copy of the region around `outline`, then keep only what falls inside
    the outline (anti-aliased): irises inside the eyelids, teeth inside the lips."""
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(outline.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(outline.max(axis=0)).astype(int) + 3, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    origin = np.array([x0, y0], dtype=np.float64)
    roi = image[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    _fill(mask, outline - origin, 255)
    layer = roi.copy()
    paint(layer, origin)
    alpha = mask.astype(np.float32)[..., None] / 255.0
    roi[:] = (roi * (1.0 - alpha) + layer * alpha + 0.5).astype(np.uint8)


def _eye_half_size(eye: np.ndarray) -> np.ndarray:
    """Half width and half height of an eye opening from its 6 points."""
    return np.array([np.linalg.norm(eye[3] - eye[0]) / 2, np.linalg.norm(eye[1] - eye[5]) / 2])


def gaze_shift(eye: np.ndarray, gaze: tuple[float, float]) -> np.ndarray:
    """How far the iris and pupil of an eye (its 6 points) move off centre for a gaze (derived pupils move too)."""
    return np.asarray(gaze) * _eye_half_size(eye) * np.array([0.5, 0.4])


def _draw_eye(image: np.ndarray, geo: FaceGeometry, k: int, spec: FaceSpec, unit: float) -> None:
    """Eye opening (sclera, iris, pupil, glint) inside the lid outline through the 6 eye points, lids and crease."""
    app = spec.appearance
    eye = geo.landmarks[36 + 6 * k : 42 + 6 * k]
    outline = spline(eye, closed=True, steps=5)
    half = _eye_half_size(eye)
    shift = gaze_shift(eye, spec.gaze)

    def paint(layer: np.ndarray, origin: np.ndarray) -> None:
        _fill(layer, outline - origin, app.sclera)
        iris = geo.irises[k] - origin + shift
        _fill(layer, iris, app.iris)
        _stroke(layer, iris, _scaled(app.iris, 0.5), 1, closed=True)
        _fill(layer, geo.pupils[k] - origin + shift, (15.0, 15.0, 15.0))
        glint = geo.pupils[k].mean(axis=0) - origin + shift + half * np.array([0.12, -0.25])
        _ellipse(layer, glint, (max(1.0, unit * 0.012),) * 2, (250.0, 250.0, 250.0))

    _paint_inside(image, outline, paint)
    _stroke(image, spline(eye[[0, 1, 2, 3]], steps=4), _scaled(app.brows, 0.6), round(unit * 0.03))
    _stroke(image, spline(eye[[3, 4, 5, 0]], steps=4), _scaled(app.skin, 0.6), round(unit * 0.012))
    crease = eye[[0, 1, 2, 3]] + np.array([0.0, -0.045 * unit]) * np.array([[0.3], [1.0], [1.0], [0.3]])
    _stroke(image, spline(crease, steps=4), _scaled(app.skin, 0.8), round(unit * 0.012))


def _draw_mouth(image: np.ndarray, geo: FaceGeometry, spec: FaceSpec, unit: float) -> None:
    """Lips filled between the outer (48-59) and inner (60-67) contours; an open mouth shows cavity and teeth."""
    app = spec.appearance
    lm = geo.landmarks
    outer = spline(lm[48:60], closed=True, steps=5)
    _fill(image, outer, app.lips)
    upper = np.concatenate([spline(lm[48:55], steps=5), spline(lm[[64, 63, 62, 61, 60]], steps=5)])
    _fill(image, upper, _scaled(app.lips, 0.85))
    inner = spline(lm[60:68], closed=True, steps=5)
    if np.linalg.norm(lm[66] - lm[62]) > 0.8:

        def paint(layer: np.ndarray, origin: np.ndarray) -> None:
            _fill(layer, inner - origin, (45.0, 35.0, 70.0))
            if app.teeth:
                top = spline(lm[60:65], steps=5) - origin
                _fill(layer, np.concatenate([top, (top + (lm[66] - lm[62]) * 0.35)[::-1]]), (215.0, 225.0, 230.0))

        _paint_inside(image, inner, paint)
    _stroke(image, spline(lm[60:65], steps=5), _scaled(app.lips, 0.45), round(unit * 0.02))
    _stroke(image, outer, _scaled(app.lips, 0.8), 1, closed=True)


def _face_unit(geo: FaceGeometry, start: int, end: int) -> np.ndarray:
    """One face unit in the direction from landmark `start` to landmark `end`, in pixels (full length whatever the
    pose: offsets along it do not shrink as the head turns)."""
    direction = geo.landmarks[end] - geo.landmarks[start]
    return direction / max(float(np.linalg.norm(direction)), 1e-6) * geo.units_per_face


def wrinkle_lines(geo: FaceGeometry) -> list[np.ndarray]:
    """Where skin folds: the nasolabial folds from the nose wings past the mouth corners, three forehead lines over
    the brows, crow's feet at the outer eye corners and a line under each eye."""
    lm, down, across = geo.landmarks, _face_unit(geo, 27, 8), _face_unit(geo, 36, 45)  # nose bridge to chin, eye to eye
    lines = []
    for wing, corner, outward in ((lm[31], lm[48], -across), (lm[35], lm[54], across)):
        start, end = wing + 0.07 * outward - 0.02 * down, corner + 0.08 * outward + 0.12 * down
        lines.append(spline(np.array([start, (wing + corner) / 2 + 0.14 * outward, end])))
    brows = lm[[18, 19, 20, 23, 24, 25]]
    lines += [spline(brows - (0.16 + 0.11 * k) * down) for k in range(3)]
    for corner, outward in ((lm[36], -across), (lm[45], across)):
        start = corner + 0.06 * outward
        lines += [np.array([start, corner + 0.2 * outward + tilt * down]) for tilt in (-0.07, 0.0, 0.07)]
    lines += [spline(lm[[36, 41, 40, 39]] + 0.09 * down), spline(lm[[42, 47, 46, 45]] + 0.09 * down)]
    return lines


def _draw_wrinkles(image: np.ndarray, geo: FaceGeometry, head: np.ndarray, depth: float) -> None:
    """Soft dark creases along `wrinkle_lines` inside the head's outline, `depth` 0..1: what an older face shows
    at its features' edges."""
    if depth <= 0.0:
        return
    unit = geo.units_per_face
    crease, skin = np.zeros(image.shape[:2], np.float32), np.zeros(image.shape[:2], np.float32)
    for line in wrinkle_lines(geo):
        _stroke(crease, line, 1.0, round(unit * 0.015))
    _fill(skin, head, 1.0)
    crease = cv2.GaussianBlur(crease, (0, 0), max(0.5, unit * 0.01)) * skin
    image[:] = np.clip(image * (1.0 - WRINKLE_DARKENING * depth * crease[..., None]) + 0.5, 0, 255).astype(np.uint8)


def facial_hair_outlines(geo: FaceGeometry, kind: str, reach: float) -> list[np.ndarray]:
    """The closed outlines of a mustache (between nose and upper lip, hanging `reach` of the way from the lip's top
    edge to the mouth line at its centre, the same offset along the whole lip), a goatee (the mustache and the chin
    below the lower lip) or a beard (the mustache and the jaw from cheek to cheek)."""
    if kind == "none":
        return []
    lm, down = geo.landmarks, _face_unit(geo, 27, 8)
    top = spline(lm[31:36], steps=3) + 0.05 * down
    upper_lip = spline(lm[48:55], steps=3) + (lm[62] - lm[51]) * reach
    ends = [lm[48] + 0.08 * down + (lm[48] - lm[54]) * 0.06, lm[54] + 0.08 * down + (lm[54] - lm[48]) * 0.06]
    outlines = [np.concatenate([[ends[0]], top, [ends[1]], upper_lip[::-1]])]
    lower_lip = spline(lm[[54, 55, 56, 57, 58, 59, 48]], steps=3) + 0.04 * down
    if kind == "goatee":
        chin = lm[6:11] + (lm[57] - lm[6:11]) * 0.1
        outlines.append(np.concatenate([lower_lip[1:-1], chin]))
    elif kind == "beard":
        jaw = spline(lm[2:15], steps=3)
        cheeks = [lm[2] + (lm[48] - lm[2]) * 0.3, lm[14] + (lm[54] - lm[14]) * 0.3]
        outlines.append(np.concatenate([jaw, [cheeks[1]], lower_lip, [cheeks[0]]]))
    return outlines


def _draw_facial_hair(image: np.ndarray, geo: FaceGeometry, app: Appearance, strands: np.ndarray) -> None:
    """Facial hair in the brows' colour (the hair's, darker) with the hair's strands, soft at its edges."""
    outlines = facial_hair_outlines(geo, app.facial_hair, app.mustache_reach)
    if not outlines:
        return
    mask = np.zeros(image.shape[:2], np.float32)
    for outline in outlines:
        _fill(mask, outline, 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.6, geo.units_per_face * 0.02))
    alpha = (mask * app.facial_hair_density)[..., None]
    hair = np.asarray(app.brows, np.float32) * strands[..., None]
    image[:] = np.clip(image * (1.0 - alpha) + hair * alpha + 0.5, 0, 255).astype(np.uint8)


def _draw_glasses(image: np.ndarray, geo: FaceGeometry, app: Appearance, rng: np.random.Generator) -> None:
    """Clear lenses (a faint tint and a glare streak that leave the eyes readable) inside thin rims, the bridge
    and the temple arms."""
    if not geo.lenses:
        return
    unit = geo.units_per_face
    thickness = max(1, round(unit * app.frame_thickness))
    angle = rng.uniform(0, np.pi)
    along = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-along[1], along[0]])
    shift, half_width = rng.uniform(-0.6, 0.6), rng.uniform(0.08, 0.3)
    for lens in geo.lenses:
        centre = lens.mean(axis=0)
        reach = float(np.abs(lens - centre).max())
        mid = centre + across * reach * shift
        ends = np.stack([mid - along * reach * 1.5, mid + along * reach * 1.5])
        side = across * reach * half_width
        glare = np.concatenate([ends + side, (ends - side)[::-1]])

        def paint(layer: np.ndarray, origin: np.ndarray, glare: np.ndarray = glare) -> None:
            tinted = cv2.addWeighted(
                layer, 1.0 - 0.3 * app.lens_glare, np.full_like(layer, 235), 0.3 * app.lens_glare, 0
            )
            _fill(tinted, glare - origin, (250.0, 250.0, 245.0))
            layer[:] = cv2.addWeighted(layer, 1.0 - app.lens_glare, tinted, app.lens_glare, 0)

        _paint_inside(image, lens, paint)
        _stroke(image, lens, app.frames, thickness, closed=True)
    for part in geo.frame:
        _stroke(image, part, app.frames, thickness)


def _light(image: np.ndarray, geo: FaceGeometry, head: np.ndarray, spec: FaceSpec) -> np.ndarray:
    """The head lit as a surface (its face mesh, `shading.shade`), the scene behind it by a gradient from the same
    light; then contrast and brightness. The gradient is smooth, so it is computed at 1/4 resolution."""
    size = image.shape[0]
    low = max(size // 4, 4)
    xs, ys = _grid(low)
    factor = size / low
    cx, cy = (geo.face_centre + 0.5) / factor - 0.5
    light = spec.lighting
    reach = max(geo.units_per_face * 2.0, 1.0) / factor
    lx, ly = math.cos(math.radians(light.angle)), math.sin(math.radians(light.angle))
    gain = light.ambient + light.strength * ((xs - cx) * lx + (ys - cy) * ly) / reach
    gain = cv2.resize(gain.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    shading = shade(geo.surface, spec.appearance, light, size, geo.units_per_face)
    skin = np.zeros((size, size), np.float32)
    _fill(skin, head, 1.0)
    for part in (geo.neck, *geo.ears_behind, *geo.ears_on_head):
        _fill(skin, part, 1.0)
    alpha = skin[..., None]
    gains = gain[..., None] + (shading.factor - gain[..., None]) * alpha
    lit = image.astype(np.float32) * gains + (255.0 * shading.highlight * skin)[..., None]
    lit = np.clip(lit * spec.camera.contrast + spec.camera.brightness, 0, 255)
    return (lit + 0.5).astype(np.uint8)


def _draw_occluder(
    image: np.ndarray, mask: np.ndarray, geo: FaceGeometry, occ: Occluder, rng: np.random.Generator
) -> None:
    """Draw an occluder without anti-aliasing, into the image and `mask` alike, so both cover the same pixels."""
    shapes = _occluder_shapes(geo, occ, rng)
    for target, colour in ((image, occ.colour), (mask, 255)):
        for points, thickness in shapes:
            if thickness == 0:
                _fill(target, points, colour, aa=False)
            else:
                _stroke(target, points, colour, thickness, aa=False)
    if occ.kind == "hand":  # the gaps between fingers, inside the hand's own pixels
        for points, thickness in shapes[1:]:
            _stroke(image, points, _scaled(occ.colour, 0.8), max(1, thickness // 6), aa=False)


def _occluder_shapes(geo: FaceGeometry, occ: Occluder, rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    """The occluder as polygons (thickness 0: filled) and thick polylines, in pixels."""
    unit = geo.units_per_face
    lm = geo.landmarks
    anchor = lm[occ.anchor] + np.asarray(occ.offset) * unit
    angle = math.radians(occ.angle)
    along = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-along[1], along[0]])
    ring = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    circle = np.stack([np.cos(ring), np.sin(ring)], axis=-1)
    if occ.kind == "bar":
        half_length, half_width = 3.0 * unit, 0.5 * occ.size * unit
        corners = [
            anchor + a * half_length * along + b * half_width * across for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
        return [(np.array(corners), 0)]
    if occ.kind == "sunglasses":
        eyes = [lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)]
        between = eyes[1] - eyes[0]
        tilt = math.atan2(between[1], between[0])
        rotate = np.array([[math.cos(tilt), -math.sin(tilt)], [math.sin(tilt), math.cos(tilt)]])
        width = float(np.linalg.norm(lm[39] - lm[36]))
        lens = (circle * np.array([0.85, 0.62]) + np.array([0.0, 0.1])) * width * (0.6 + occ.size)
        frame = max(1, round(unit * 0.05))
        return [
            (eyes[0] + lens @ rotate.T, 0),
            (eyes[1] + lens @ rotate.T, 0),
            (np.stack([eyes[0] + between * 0.3, eyes[1] - between * 0.3]), frame),
            (np.stack([eyes[0] - between * 0.55, lm[0]]), frame),
            (np.stack([eyes[1] + between * 0.55, lm[16]]), frame),
        ]
    if occ.kind == "mask":
        lift = (lm[29] - lm[28]) * 0.3
        outline = np.concatenate([[lm[1] + lift], lm[2:15], [lm[15] + lift, lm[29]]])
        return [(spline(outline, closed=True, steps=3), 0)]
    if occ.kind == "hand":
        palm = occ.size * unit
        shapes = [(anchor + palm * (circle[:, :1] * along + 0.8 * circle[:, 1:] * across), 0)]
        finger = max(2, round(palm * 0.32))
        for spread in (-0.75, -0.25, 0.25, 0.75):
            base = anchor + along * palm * 0.7 + across * spread * palm * 0.8
            shapes.append((np.stack([base, base + along * palm * (1.1 + 0.25 * (1 - abs(spread)))]), finger))
        thumb = anchor - across * palm * 0.7
        shapes.append((np.stack([thumb, thumb - across * palm * 0.7 + along * palm * 0.5]), finger))
        return shapes
    count = int(rng.integers(5, 9))
    angles = (np.arange(count) + rng.uniform(-0.3, 0.3, count)) * (2 * np.pi / count)  # always around the anchor
    radius = occ.size * unit * rng.uniform(0.6, 1.2, count)
    return [(anchor + np.stack([np.cos(angles), np.sin(angles)], axis=-1) * radius[:, None], 0)]


def _camera(image: np.ndarray, spec: FaceSpec, rng: np.random.Generator) -> np.ndarray:
    """White balance, gamma, greyscale, blur, motion blur, sensor noise and JPEG compression."""
    cam = spec.camera
    if cam.white_balance != (1.0, 1.0, 1.0) or cam.gamma != 1.0:
        curve = 255.0 * (np.arange(256) / 255.0) ** cam.gamma
        luts = [np.clip(curve * gain + 0.5, 0, 255).astype(np.uint8) for gain in cam.white_balance]
        image = cv2.merge([cv2.LUT(channel, lut) for channel, lut in zip(cv2.split(image), luts, strict=True)])
    if cam.grayscale:
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if cam.blur > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), cam.blur)
    if cam.motion >= 2:
        length = round(cam.motion)
        kernel = np.zeros((length, length), np.float32)
        c = (length - 1) / 2
        dx, dy = math.cos(math.radians(cam.motion_angle)) * c, math.sin(math.radians(cam.motion_angle)) * c
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        image = cv2.filter2D(image, -1, kernel / kernel.sum())
    if cam.noise > 0.5:
        # uniform noise of the requested standard deviation (uniform bytes are far cheaper than normals)
        noise = np.frombuffer(rng.bytes(image.size), np.uint8).reshape(image.shape)
        scale = cam.noise / UNIFORM_BYTE_STD
        image = cv2.addWeighted(image, 1.0, noise, scale, -127.5 * scale, dtype=cv2.CV_8U)
    if cam.jpeg_quality:
        _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, cam.jpeg_quality])
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return image
