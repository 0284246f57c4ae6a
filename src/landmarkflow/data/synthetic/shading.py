"""Light the face as a surface: per-vertex diffuse and ambient occlusion on the posed face mesh and a skin tint per
vertex, turned into a per-pixel colour factor; the specular highlight per pixel from the interpolated normals.

Points inside every triangle that faces the camera are splatted into the image and spread by a blur
normalised by their density: smooth shading without rasterising 900 triangles one call at a time. The highlight
is computed after the blur from the blurred normals (Phong, not Gouraud), so a blur wide enough to fill the cheeks'
sparse vertices does not also flatten it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from landmarkflow.data.synthetic.face_mesh import Surface, face_mesh
from landmarkflow.data.synthetic.params import Appearance, Lighting

# blur sigma that fills the shading between the splatted vertices, in face units: at 0.04 a sharp highlight on a
# turned cheek was a grid of dots, one per vertex, which photographs never show
SMOOTH = 0.06
SPARSEST = 0.08  # the widest spacing of splats on the mesh (cheeks, forehead), in face units
COARSE, COARSE_FROM = 0.5, 20.0  # faces with more than 40 pixels per face unit are shaded at half size
# barycentric weights of the points splatted per triangle: its centre and a point toward each corner
SAMPLES = np.array([[1 / 3, 1 / 3, 1 / 3], [2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3]])
SPREAD = 0.35  # blur sigma that carries the shading past the mesh (hairline, ears, neck), in face units
BLUSH_SPOTS = np.array([[-0.5, 0.55, 1.0], [0.5, 0.55, 1.0], [0.0, 0.45, 0.7], [0.0, 1.3, 0.4]])  # x, y, weight


@dataclass(frozen=True)
class Shading:
    """Per-pixel factors to multiply the drawn face by (B, G, R), highlights to add (0..1), and mesh coverage."""

    factor: np.ndarray  # (H, W, 3) float32
    highlight: np.ndarray  # (H, W) float32
    coverage: np.ndarray  # (H, W) float32, 0..1


def light_direction(lighting: Lighting) -> np.ndarray:
    """Unit vector toward the light in camera space (x right, y down, z toward the camera)."""
    azimuth, elevation = math.radians(lighting.angle), math.radians(lighting.elevation)
    return np.array(
        [math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation)]
    )


@lru_cache(maxsize=1)
def _tint_areas() -> tuple[np.ndarray, np.ndarray]:
    """Per vertex of the rest mesh, once: how much blush (cheeks, nose, chin) and how much beard area (lower face
    but the lips) it carries."""
    rest = face_mesh().vertices
    blush = np.zeros(len(rest))
    for x, y, weight in BLUSH_SPOTS:
        blush += weight * np.exp(-((rest[:, 0] - x) ** 2 + (rest[:, 1] - y) ** 2) / (2 * 0.2**2))
    lower = np.clip((rest[:, 1] - 0.75) / 0.3, 0.0, 1.0) * (np.abs(rest[:, 0]) < 0.85)
    lip_area = np.exp(-((rest[:, 0] / 0.45) ** 2 + ((rest[:, 1] - 0.98) / 0.2) ** 2))
    return blush, lower * (1.0 - lip_area)


def _skin_tint(appearance: Appearance) -> np.ndarray:
    """(V, 3) BGR albedo factors: blush on cheeks, nose and chin; a stubble shadow on the lower face."""
    blush, beard = _tint_areas()
    tint = 1.0 - appearance.blush * blush[:, None] * np.array([0.35, 0.3, -0.05])
    return tint * (1.0 - appearance.stubble * beard[:, None] * np.array([0.75, 0.85, 1.0]))


def shade(surface: Surface, appearance: Appearance, lighting: Lighting, size: int, unit: float) -> Shading:
    """The lit mesh of one face at `size` x `size` pixels (`unit`: pixels per face unit)."""
    mesh = face_mesh()
    to_light = light_direction(lighting)
    half = to_light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    normals = surface.normals
    diffuse = np.clip(normals @ to_light, 0.0, None)
    gain = lighting.ambient * (1.0 - lighting.strength + 2.0 * lighting.strength * diffuse) * mesh.occlusion
    colour = np.c_[gain[:, None] * _skin_tint(appearance), normals * mesh.occlusion[:, None]].astype(np.float32)

    triangles = mesh.triangles
    corners = surface.points[triangles]
    edges = corners[:, 1:] - corners[:, :1]
    front = edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0] > 0
    points = np.einsum("sk,tkd->tsd", SAMPLES, corners[front]).reshape(-1, 2)
    values = np.einsum("sk,tkc->tsc", SAMPLES, colour[triangles[front]]).reshape(-1, colour.shape[1])

    far = np.full(3, lighting.ambient, np.float32)  # beyond the spread: the mean light
    factor = np.empty((size, size, 3), np.float32)
    factor[:] = far
    highlight, coverage = np.zeros((size, size), np.float32), np.zeros((size, size), np.float32)
    margin = 2.0 * SPREAD * unit + 2.0  # only the window around the face is worked on
    low = np.clip(np.floor(points.min(axis=0, initial=size) - margin), 0, size).astype(int)
    high = np.clip(np.ceil(points.max(axis=0, initial=0) + margin), 0, size).astype(int)
    if (high - low).min() < 2:
        return Shading(factor=factor, highlight=highlight, coverage=coverage)
    window = np.s_[low[1] : high[1], low[0] : high[0]]
    width, height = high - low
    scale = COARSE if unit * COARSE >= COARSE_FROM else 1.0  # smooth shading of a big face: work at half size
    shape = (max(2, round(width * scale)), max(2, round(height * scale)))
    sums, weight = _splat((points - low) * scale, values, *shape)
    smooth, density = _normalised_blur(sums, weight, max(0.8, SMOOTH * unit * scale))
    spread, reach = _normalised_blur(sums[..., :3], weight, max(2.0, SPREAD * unit * scale))
    full = (SPARSEST * unit * scale) ** 2  # splat density (per pixel, blurred) of the sparsest part of the mesh
    covered = np.clip(density * full, 0.0, 1.0)
    spread = far + (spread - far) * np.clip(reach * full, 0.0, 1.0)[..., None]
    mixed = np.dstack([spread + (smooth[..., :3] - spread) * covered[..., None], covered])
    shine = _highlight(smooth[..., 3:], half, lighting) * covered
    if scale != 1.0:  # one resize of all five channels would round differently from these (and change the data)
        mixed = cv2.resize(mixed, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)
        shine = cv2.resize(shine, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)
    factor[window] = mixed[..., :3]
    highlight[window] = shine
    coverage[window] = mixed[..., 3]
    return Shading(factor=factor, highlight=highlight, coverage=coverage)


def _highlight(normals: np.ndarray, half: np.ndarray, lighting: Lighting) -> np.ndarray:
    """Blinn-Phong per pixel from the blurred normals, each scaled by its vertex's ambient occlusion: the
    normalised direction gives the highlight, the length (at most 1) dims it in creases, and a little where the
    blur averages normals that turn apart (ridges, the outline)."""
    length = np.linalg.norm(normals, axis=-1)
    facing = np.clip(normals @ half.astype(np.float32) / np.maximum(length, 1e-6), 0.0, None)
    return lighting.specular * facing**lighting.shininess * length


def _splat(points: np.ndarray, values: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's values, and a weight of 1, shared bilinearly among its four pixels: the (height, width, C)
    weighted sums and the (height, width) weights."""
    base = np.floor(points).astype(np.int64)
    frac = points - base
    indices, weights, picked = [], [], []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        x, y = base[:, 0] + dx, base[:, 1] + dy
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        weight = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
        indices.append((y * width + x)[inside])
        weights.append(weight[inside])
        picked.append(values[inside])
    index, weight, value = np.concatenate(indices), np.concatenate(weights), np.concatenate(picked)
    count = width * height
    sums = np.stack([np.bincount(index, weight * value[:, c], count) for c in range(value.shape[1])], axis=-1)
    total = np.bincount(index, weight, count)
    return sums.reshape(height, width, -1).astype(np.float32), total.reshape(height, width).astype(np.float32)


def _normalised_blur(sums: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Blur the splatted sums and weights alike and divide: a smooth fill that does not fade at the edges. Also
    returns the blurred weight (splats per pixel near each pixel). A wide blur runs on a smaller image (a step of
    about sigma / 2 pixels loses nothing a Gaussian that wide keeps)."""
    height, width = weight.shape
    step = max(1, int(sigma / 2))
    small = (max(4, width // step), max(4, height // step))

    def shrink(image: np.ndarray) -> np.ndarray:
        if image.ndim == 3 and image.shape[2] > 4:  # INTER_AREA takes at most four channels
            return np.dstack([shrink(part) for part in np.array_split(image, -(-image.shape[2] // 4), axis=2)])
        return cv2.resize(image, small, interpolation=cv2.INTER_AREA)

    def blur(image: np.ndarray) -> np.ndarray:
        if step == 1:
            return cv2.GaussianBlur(image, (0, 0), sigma)
        reduced = shrink(image)
        blurred = cv2.GaussianBlur(reduced, (0, 0), sigma * small[0] / width)
        return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)

    density = blur(weight)
    return blur(sums) / np.maximum(density, 1e-6)[..., None], density
