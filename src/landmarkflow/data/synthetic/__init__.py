"""Procedural synthetic faces with exact 68-point landmarks, written in the 300W layout.

The embedded default dataset (the real benchmarks are licensed for research only): a 3-D template face
with random identity, expression and head pose, rendered with OpenCV over cluttered backgrounds, with
occluders that mark the points they cover as not visible.

- `face3d`: template, deformations, pose, silhouettes, projection.
- `params`: `FaceSpec` (everything one image depends on) and its random sampling.
- `render`: `render_face(spec, size)` -> image, landmarks, visibility, occluder mask.
- `writer`: `synthesize` (the 300W folder layout + `synthetic_meta.csv`) and `read_synthetic`.
"""

from landmarkflow.data.synthetic.params import FaceSpec, Occluder, sample_spec
from landmarkflow.data.synthetic.render import RenderedFace, render_face
from landmarkflow.data.synthetic.writer import META_FILE, SynthReport, read_synthetic, synthesize

__all__ = [
    "META_FILE",
    "FaceSpec",
    "Occluder",
    "RenderedFace",
    "SynthReport",
    "read_synthetic",
    "render_face",
    "sample_spec",
    "synthesize",
]
