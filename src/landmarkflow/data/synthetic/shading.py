"""Light the face as a surface: per-vertex diffuse, specular and ambient occlusion on the posed face mesh, skin
tint per vertex, rasterised back to front into a per-pixel colour factor and a highlight map.

Triangles are filled flat (OpenCV, 1/16 px) and then smoothed with a blur that is normalised by coverage, so the
facets melt into continuous shading without the shading leaking past the mesh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from landmarkflow.data.synthetic.face_mesh import FaceMesh, Surface, face_mesh
from landmarkflow.data.synthetic.params import Appearance, Lighting

SHIFT = 4
SMOOTH = 0.025  # blur sigma of the rasterised shading, in face units
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


def _skin_tint(mesh: FaceMesh, appearance: Appearance) -> np.ndarray:
    """(V, 3) BGR albedo factors: blush on cheeks, nose and chin; a stubble shadow on the lower face."""
    rest = mesh.vertices
    blush = np.zeros(len(rest))
    for x, y, weight in BLUSH_SPOTS:
        blush += weight * np.exp(-((rest[:, 0] - x) ** 2 + (rest[:, 1] - y) ** 2) / (2 * 0.2**2))
    tint = 1.0 - appearance.blush * blush[:, None] * np.array([0.35, 0.3, -0.05])
    lower = np.clip((rest[:, 1] - 0.75) / 0.3, 0.0, 1.0) * (np.abs(rest[:, 0]) < 0.85)
    lip_area = np.exp(-((rest[:, 0] / 0.45) ** 2 + ((rest[:, 1] - 0.98) / 0.2) ** 2))
    return tint * (1.0 - appearance.stubble * (lower * (1.0 - lip_area))[:, None] * np.array([0.75, 0.85, 1.0]))


def shade(surface: Surface, appearance: Appearance, lighting: Lighting, size: int, unit: float) -> Shading:
    """Rasterise the lit mesh of one face at `size` x `size` pixels (`unit`: pixels per face unit)."""
    mesh = face_mesh()
    to_light = light_direction(lighting)
    half = to_light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    normals = surface.normals
    diffuse = np.clip(normals @ to_light, 0.0, None)
    gain = lighting.ambient * (1.0 - lighting.strength + 2.0 * lighting.strength * diffuse) * mesh.occlusion
    shine = lighting.specular * np.clip(normals @ half, 0.0, None) ** lighting.shininess * mesh.occlusion
    colour = np.c_[gain[:, None] * _skin_tint(mesh, appearance), shine].astype(np.float32)

    triangles = mesh.triangles
    corners = surface.points[triangles]
    edges = corners[:, 1:] - corners[:, :1]
    front = edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0] > 0
    order = np.flatnonzero(front)[np.argsort(surface.depth[triangles[front]].mean(axis=1))]
    fixed = np.round(corners * (1 << SHIFT)).astype(np.int32)
    values = colour[triangles].mean(axis=1).astype(np.float64)
    layers = np.zeros((size, size, 4), np.float32)
    mask = np.zeros((size, size), np.float32)
    for t in order:
        cv2.fillPoly(layers, [fixed[t]], values[t].tolist(), cv2.LINE_8, SHIFT)
    cv2.fillPoly(mask, list(fixed[order]), 1.0, cv2.LINE_8, SHIFT)

    smooth, coverage = _normalised_blur(layers, mask, max(0.6, SMOOTH * unit))
    spread, reach = _normalised_blur(layers, mask, max(2.0, SPREAD * unit))
    far = np.array([lighting.ambient] * 3 + [0.0], np.float32)  # beyond the spread: the mean light
    spread = far + (spread - far) * np.clip(3.0 * reach, 0.0, 1.0)[..., None]
    mixed = spread + (smooth - spread) * coverage[..., None]
    return Shading(factor=mixed[..., :3], highlight=mixed[..., 3] * coverage, coverage=coverage)


def _normalised_blur(values: np.ndarray, mask: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Blur what the mask covers and divide by the blurred mask: a smooth fill that does not fade at the edges.
    Also returns the blurred mask (how much of the mesh is near each pixel). A wide blur runs on a smaller image
    (a step of about sigma / 2 pixels loses nothing a Gaussian that wide keeps)."""
    size = mask.shape[0]
    small = max(4, size // max(1, int(sigma / 2)))

    def blur(image: np.ndarray) -> np.ndarray:
        if small == size:
            return cv2.GaussianBlur(image, (0, 0), sigma)
        reduced = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
        blurred = cv2.GaussianBlur(reduced, (0, 0), sigma * small / size)
        return cv2.resize(blurred, (size, size), interpolation=cv2.INTER_LINEAR)

    weight = blur(mask)
    return blur(values * mask[..., None]) / np.maximum(weight, 1e-4)[..., None], weight
