"""Photographs behind the synthetic faces: random crops of the public-domain / CC0 sample images that
scikit-image ships (bricks, grass, gravel, a cat, coffee, a rocket, coins, text, a horse, ...), so backgrounds
have the textures and edges of the world. None of them shows a human face (the astronaut and the cameraman are
left out: an unlabelled face behind the labelled one would teach the models to ignore faces).
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib.resources import files

import cv2
import numpy as np
from PIL import Image

PHOTOS = (
    "brick.png",
    "grass.png",
    "gravel.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "coins.png",
    "text.png",
    "clock_motion.png",
    "horse.png",
    "ihc.png",
    "cell.png",
    "page.png",
    "moon.png",
)


@lru_cache(maxsize=len(PHOTOS))
def photo(name: str) -> np.ndarray:
    """One sample photo as BGR uint8 (grey ones expanded to three channels). Pillow decodes them: libpng, under
    OpenCV, warns on stderr about one file's colour profile on every first read."""
    with files("skimage.data").joinpath(name).open("rb") as handle, Image.open(handle) as image:
        rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[..., ::-1])


def photo_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a random photo, turned, mirrored, recoloured and sometimes out of focus, at size x size."""
    source = photo(PHOTOS[int(rng.integers(len(PHOTOS)))])
    h, w = source.shape[:2]
    side = min(h, w) * rng.uniform(0.25, 1.0)
    angle = rng.uniform(-30, 30) if rng.uniform() < 0.3 else 0.0
    centre = (rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2))
    scale = size / side
    turn = cv2.getRotationMatrix2D(centre, angle, scale)
    turn[:, 2] += np.array([size / 2, size / 2]) - np.array(centre)
    crop = cv2.warpAffine(
        source,
        turn,
        (size, size),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    gains = rng.uniform(0.6, 1.25, 3) * rng.uniform(0.6, 1.2)
    crop = np.clip(crop * gains.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    if rng.uniform() < 0.4:
        crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(1.0, 1.0 + math.sqrt(size) / 4))
    return np.ascontiguousarray(crop)
