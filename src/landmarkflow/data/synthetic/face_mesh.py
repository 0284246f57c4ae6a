"""The 3-D surface under the drawn features: MediaPipe's canonical face mesh (468 vertices, Apache-2.0; see
assets/NOTICE.md), reshaped with every face so that its shading follows that face's nose, eye sockets, cheeks,
lips and jaw.

The mesh is stored in the head frame of `face3d` (assets/face_mesh.npz, built by tools/face_mesh_asset.py). A face
moves 68 anchor vertices onto its own 3-D landmarks; a thin-plate spline carries every other vertex along.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np

MESH_FILE = "face_mesh.npz"


@dataclass(frozen=True)
class FaceMesh:
    """The rest mesh, and what reshaping and shading it needs, computed once."""

    vertices: np.ndarray  # (V, 3) head frame
    triangles: np.ndarray  # (T, 3) vertex indices, wound so that the front faces +z
    anchors: np.ndarray  # (68,) the vertex each landmark moves
    spline: np.ndarray  # (V, 68) vertex displacement = spline @ anchor displacement
    occlusion: np.ndarray  # (V,) 1 on open surface, lower in creases (eye sockets, nose wings, mouth corners)


@lru_cache(maxsize=1)
def face_mesh() -> FaceMesh:
    """The packaged mesh with its spline weights and ambient occlusion."""
    with (
        files("landmarkflow.data.synthetic").joinpath("assets", MESH_FILE).open("rb") as handle,
        np.load(handle) as npz,
    ):
        vertices = npz["vertices"].astype(np.float64)
        triangles, anchors = npz["triangles"], npz["anchors"]
    return FaceMesh(vertices, triangles, anchors, _spline(vertices, vertices[anchors]), _occlusion(vertices, triangles))


def _spline(vertices: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Weights of a 3-D thin-plate spline (kernel |r|, affine part) through the anchors, evaluated at the vertices:
    displacements given at the anchors become smooth displacements everywhere, exact at the anchors."""
    count = len(centres)
    kernel = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    affine = np.c_[np.ones(count), centres]
    system = np.zeros((count + 4, count + 4))
    system[:count, :count], system[:count, count:], system[count:, :count] = kernel, affine, affine.T
    inverse = np.linalg.inv(system)[:, :count]
    basis = np.c_[np.linalg.norm(vertices[:, None] - centres[None], axis=-1), np.ones(len(vertices)), vertices]
    return basis @ inverse


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit normals per vertex: the area-weighted mean of the normals of the triangles around it."""
    corners = vertices[triangles]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _occlusion(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """A cheap ambient-occlusion term from concavity: how far a vertex sits behind the mean of its neighbours,
    along its normal, relative to the edge length there."""
    neighbours = np.zeros_like(vertices)
    degree = np.zeros(len(vertices))
    for a, b in ((0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)):
        np.add.at(neighbours, triangles[:, a], vertices[triangles[:, b]])
        np.add.at(degree, triangles[:, a], 1.0)
    offset = neighbours / np.maximum(degree, 1.0)[:, None] - vertices
    edge = np.linalg.norm(offset, axis=1).mean()
    concavity = np.einsum("ij,ij->i", offset, vertex_normals(vertices, triangles)) / edge
    return np.clip(1.0 - 0.35 * np.clip(concavity, 0.0, None), 0.55, 1.0)


def reshape(mesh: FaceMesh, landmarks_3d: np.ndarray) -> np.ndarray:
    """(V, 3) vertices of the mesh with its anchors moved onto a face's 68 landmarks (head frame)."""
    return mesh.vertices + mesh.spline @ (landmarks_3d - mesh.vertices[mesh.anchors])


@dataclass(frozen=True)
class Surface:
    """The posed mesh: vertices projected into the geometry's 2-D frame, with their camera-space normals (z toward
    the camera) and depths (larger is nearer)."""

    points: np.ndarray  # (V, 2)
    normals: np.ndarray  # (V, 3)
    depth: np.ndarray  # (V,)

    def transformed(self, scale: float, offset: np.ndarray) -> Surface:
        return Surface(self.points * scale + offset, self.normals, self.depth * scale)
