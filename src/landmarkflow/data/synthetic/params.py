"""What one synthetic face is made of (`FaceSpec`) and how specs are drawn at random for each difficulty.

Everything that decides the image lives in the spec, so a spec renders to the same bytes every time;
fine-grained clutter (background shapes, shape jitter, noise) comes from `detail_seed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from landmarkflow.data.synthetic.face3d import Expression, Glasses, Hair, Identity, Pose

Colour = tuple[float, float, float]  # BGR, 0-255

OCCLUDER_KINDS = ("hand", "sunglasses", "bar", "mask", "blob")
FACIAL_HAIR = ("none", "mustache", "goatee", "beard")


@dataclass(frozen=True)
class Appearance:
    """Colours (BGR) and sizes of skin, lips, hair, eyes and clothes."""

    skin: Colour = (150.0, 170.0, 210.0)
    lips: Colour = (110.0, 110.0, 190.0)
    hair: Colour = (30.0, 40.0, 60.0)
    brows: Colour = (35.0, 45.0, 60.0)
    iris: Colour = (40.0, 70.0, 110.0)
    sclera: Colour = (225.0, 230.0, 235.0)
    clothes: Colour = (120.0, 80.0, 40.0)
    brow_thickness: float = 1.0
    teeth: bool = True
    blush: float = 0.0  # redness of cheeks, nose and chin, 0..1
    stubble: float = 0.0  # darkening of the beard area, 0..1
    frames: Colour = (30.0, 30.0, 30.0)  # eyeglass frames
    frame_thickness: float = 0.025  # face units
    lens_glare: float = 0.2  # how much the lenses reflect, 0..1
    facial_hair: str = "none"  # one of FACIAL_HAIR, in the brows' colour (the hair's, darker)
    facial_hair_density: float = 0.8  # opacity of the facial hair, 0..1
    mustache_reach: float = 0.35  # how far down the upper lip a mustache hangs: 0 its top edge, 1 the mouth line
    wrinkles: float = 0.0  # depth of the skin's creases (nasolabial folds, forehead, eye corners, under the eyes), 0..1
    neck_shade: float = 0.62  # the neck's brightness against the face's (the shadow under the jaw)
    jaw_line: float = 0.7  # brightness of a line drawn along the jaw (a crease); 1 draws none

    def __post_init__(self) -> None:
        if self.facial_hair not in FACIAL_HAIR:
            raise ValueError(f"unknown facial hair {self.facial_hair!r}: expected one of {', '.join(FACIAL_HAIR)}")
        if not 0.0 <= self.mustache_reach <= 1.0:
            raise ValueError(f"mustache_reach {self.mustache_reach} is outside 0..1 (lip's top edge .. mouth line)")
        if not 0.0 <= self.wrinkles <= 1.0:
            raise ValueError(f"wrinkles {self.wrinkles} is outside 0..1 (none .. the deepest creases)")


@dataclass(frozen=True)
class Lighting:
    """A directional light: `angle` on screen (degrees, 0 = from the right, 90 = from below) and `elevation` toward
    the camera (90 = from the camera). The face is lit as a surface: `ambient` x (1 - strength + 2 strength
    cos(normal, light)), plus Blinn-Phong highlights; the scene behind gets a gradient of the same strength."""

    angle: float = 45.0
    strength: float = 0.25
    ambient: float = 1.0
    elevation: float = 45.0
    specular: float = 0.1
    shininess: float = 16.0


@dataclass(frozen=True)
class Occluder:
    """An object in front of the face, placed relative to landmark `anchor` (offset and size in face units)."""

    kind: str
    colour: Colour
    anchor: int = 30
    angle: float = 0.0
    size: float = 0.5
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in OCCLUDER_KINDS:
            raise ValueError(f"unknown occluder {self.kind!r}: expected one of {', '.join(OCCLUDER_KINDS)}")


@dataclass(frozen=True)
class Camera:
    """What the camera does to the image after the scene: blur, motion blur, noise, colour."""

    blur: float = 0.0  # Gaussian sigma, pixels
    motion: float = 0.0  # motion-blur length, pixels
    motion_angle: float = 0.0
    noise: float = 0.0  # Gaussian noise sigma, grey levels
    grayscale: bool = False
    contrast: float = 1.0
    brightness: float = 0.0
    gamma: float = 1.0  # output = input ** gamma (on 0..1)
    white_balance: Colour = (1.0, 1.0, 1.0)  # per-channel gains, BGR
    jpeg_quality: int = 0  # 0: no JPEG round trip


@dataclass(frozen=True)
class FaceSpec:
    """One synthetic face image, completely: render it with `render_face`."""

    identity: Identity = field(default_factory=Identity)
    expression: Expression = field(default_factory=Expression)
    pose: Pose = field(default_factory=Pose)
    hair: Hair = field(default_factory=Hair)
    appearance: Appearance = field(default_factory=Appearance)
    lighting: Lighting = field(default_factory=Lighting)
    occluders: tuple[Occluder, ...] = ()
    glasses: Glasses | None = None
    camera: Camera = field(default_factory=Camera)
    face_size: float = 0.6  # longer side of the landmark box / image side
    position: tuple[float, float] = (0.5, 0.5)  # landmark box within the free room of the image, 0..1
    gaze: tuple[float, float] = (0.0, 0.0)  # iris shift, fractions of the eye half-width / half-height
    detail_seed: int = 0
    hard: bool = False


SKIN_TONES_RGB = np.array(
    [(92, 56, 40), (141, 85, 54), (198, 134, 92), (224, 172, 130), (241, 194, 164), (255, 224, 196)], dtype=np.float64
)


def _skin(rng: np.random.Generator) -> Colour:
    """A skin tone between the darkest and lightest of a palette, with some warmth variation."""
    position = rng.uniform(0.0, len(SKIN_TONES_RGB) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES_RGB) - 1)
    rgb = SKIN_TONES_RGB[low] + (SKIN_TONES_RGB[high] - SKIN_TONES_RGB[low]) * (position - low)
    rgb *= rng.uniform(0.93, 1.05, 3)
    return tuple(np.clip(rgb[::-1], 0, 255).tolist())


def _pick(rng: np.random.Generator, palette: list[Colour], jitter: float = 15.0) -> Colour:
    base = np.array(palette[int(rng.integers(len(palette)))])
    return tuple(np.clip(base + rng.normal(0, jitter, 3), 0, 255).tolist())


HAIR_COLOURS: list[Colour] = [
    (20, 22, 25),
    (30, 40, 60),
    (40, 60, 95),
    (60, 100, 150),
    (110, 160, 200),
    (150, 150, 155),
]
FRAME_COLOURS: list[Colour] = [(20, 20, 20), (30, 50, 80), (150, 150, 150), (60, 150, 190), (60, 40, 120)]
WIDE_YAW = 65.0  # degrees: the turn of ordinary faces drawn wide (hard faces turn up to 70)
FACE_SIZES = (0.35, 0.8)  # the landmark box's longer side over the image side: ordinary faces
HARD_FACE_SIZES = (0.3, 0.85)  # and hard ones
GLASSES_SHARE = 0.2  # faces wearing clear eyeglasses
IRIS_COLOURS: list[Colour] = [(30, 50, 80), (40, 70, 110), (130, 100, 60), (90, 110, 70), (100, 100, 100)]


def sample_spec(rng: np.random.Generator, hard: bool, wide_yaw: bool = False) -> FaceSpec:
    """A random face; `hard` widens pose, expression, occlusion and degradation (300W's 'challenging');
    `wide_yaw` turns an ordinary face up to WIDE_YAW degrees and leaves the rest of it ordinary."""
    u = rng.uniform
    identity = Identity(
        face_width=u(0.88, 1.12),
        jaw_length=u(0.9, 1.12),
        jaw_squareness=u(-1.0, 1.0),
        eye_spacing=u(-0.05, 0.05),
        eye_size=u(0.85, 1.18),
        eye_tilt=u(-0.03, 0.04),
        brow_height=u(-0.06, 0.04),
        brow_arch=u(-0.02, 0.05),
        nose_length=u(0.88, 1.12),
        nose_width=u(0.8, 1.25),
        mouth_width=u(0.82, 1.16),
        lip_thickness=u(0.7, 1.4),
        mouth_height=u(-0.06, 0.02),
    )
    strong = hard and rng.uniform() < 0.7
    expression = Expression(
        mouth_open=float(
            rng.choice([0.0, u(0.0, 0.3), u(0.3, 1.0)], p=[0.45, 0.35, 0.2] if not strong else [0.1, 0.3, 0.6])
        ),
        smile=u(-0.4, 1.0) if strong else u(-0.2, 0.7),
        brow_raise=u(-0.8, 1.0) if strong else u(-0.3, 0.4),
        eye_open=float(np.clip(rng.normal(1.0, 0.3 if strong else 0.12), 0.1, 1.3)),
    )
    if hard:
        pose = Pose(yaw=u(-70, 70), pitch=u(-30, 30), roll=u(-40, 40))
    else:
        turn = rng.normal()  # a wide turn maps the same draw to uniform, so the other draws stay the face's own
        yaw = WIDE_YAW * math.erf(turn / math.sqrt(2.0)) if wide_yaw else float(np.clip(18.0 * turn, -45, 45))
        pose = Pose(yaw, *(float(np.clip(rng.normal(0, 9), -45, 45)) for _ in range(2)))
    hair = Hair(
        kind=str(rng.choice(["none", "short", "long"], p=[0.12, 0.58, 0.3])),
        hairline=u(-1.3, -0.95),
        volume=u(0.0, 0.18),
    )
    hair_colour = _pick(rng, HAIR_COLOURS)
    skin = _skin(rng)
    lips = tuple(np.clip(np.array(skin) * np.array([0.72, 0.68, 0.95]) * u(0.85, 1.05), 0, 255).tolist())
    appearance = Appearance(
        skin=skin,
        lips=lips,
        hair=hair_colour,
        brows=tuple(np.clip(np.array(hair_colour) * u(0.6, 1.0), 0, 255).tolist()),
        iris=_pick(rng, IRIS_COLOURS),
        sclera=tuple(np.clip(np.array([225.0, 230.0, 238.0]) * u(0.85, 1.0), 0, 255).tolist()),
        clothes=tuple(u(0, 255, 3).tolist()),
        brow_thickness=u(0.7, 1.5),
        teeth=bool(u() < 0.85),
        blush=u(0.0, 0.6),
        stubble=u(0.0, 0.5) if u() < 0.3 else 0.0,
        frames=_pick(rng, FRAME_COLOURS, 20.0),
        frame_thickness=u(0.012, 0.05),
        lens_glare=u(0.0, 0.45),
        facial_hair=str(rng.choice(FACIAL_HAIR, p=[0.76, 0.1, 0.08, 0.06])),
        facial_hair_density=u(0.5, 0.95),
    )
    glasses = None
    if u() < GLASSES_SHARE:
        glasses = Glasses(width=u(0.2, 0.3), height=u(0.12, 0.22), squareness=u(2.0, 5.0))
    lighting = Lighting(
        angle=u(0, 360),
        strength=u(0.2, 0.6) if hard else u(0.1, 0.45),
        ambient=u(0.55, 1.15) if hard else u(0.8, 1.1),
        elevation=u(15, 85),
        specular=u(0.0, 0.35),
        shininess=u(6, 40),
    )
    occluders: tuple[Occluder, ...] = ()
    if rng.uniform() < (0.6 if hard else 0.12):
        occluders = (sample_occluder(rng),)
    camera = Camera(
        blur=u(0.0, 2.2) if hard and u() < 0.5 else u(0.0, 0.9),
        motion=u(3, 9) if hard and u() < 0.25 else 0.0,
        motion_angle=u(0, 180),
        noise=u(0, 12) if hard else u(0, 5),
        grayscale=bool(u() < 0.08),
        contrast=u(0.7, 1.2) if hard else u(0.85, 1.1),
        brightness=u(-25, 20),
        gamma=float(np.exp(u(-0.35, 0.35))),
        white_balance=tuple(u(0.85, 1.15, 3).tolist()),
        jpeg_quality=int(rng.integers(25, 95)) if u() < 0.5 else 0,
    )
    spec = FaceSpec(
        identity=identity,
        expression=expression,
        pose=pose,
        hair=hair,
        appearance=appearance,
        lighting=lighting,
        occluders=occluders,
        glasses=glasses,
        camera=camera,
        face_size=u(*HARD_FACE_SIZES) if hard else u(*FACE_SIZES),
        position=(u(), u()),
        gaze=(u(-0.5, 0.5), u(-0.3, 0.3)),
        detail_seed=int(rng.integers(2**31)),
        hard=hard,
    )
    # drawn last, so that adding them kept every other parameter of a seed's faces
    look = replace(
        appearance,
        neck_shade=u(0.55, 0.95),
        jaw_line=1.0 if u() < 0.6 else u(0.65, 0.9),
        mustache_reach=u(0.3, 1.0),
        wrinkles=u(0.2, 1.0) if u() < 0.4 else 0.0,
    )
    return replace(spec, appearance=look)


def sample_occluder(rng: np.random.Generator) -> Occluder:
    """A random occluder over a random part of the face."""
    kind = str(rng.choice(OCCLUDER_KINDS, p=[0.3, 0.2, 0.2, 0.1, 0.2]))
    colour = tuple(rng.uniform(0, 255, 3).tolist())
    if kind == "hand":
        colour = _skin(rng)
    elif kind == "sunglasses":
        colour = tuple(rng.uniform(5, 60, 3).tolist())
    elif kind == "mask":
        colour = _pick(rng, [(235, 225, 210), (220, 200, 160), (40, 40, 40), (200, 200, 200)], 8)
    anchor = int(rng.choice([8, 30, 57, 39, 42, 36, 45, 3, 13, 19, 24, 62]))
    return Occluder(
        kind=kind,
        colour=colour,
        anchor=anchor,
        angle=float(rng.uniform(0, 180)),
        size=float(rng.uniform(0.25, 0.6)),
        offset=(float(rng.normal(0, 0.15)), float(rng.normal(0, 0.15))),
    )
