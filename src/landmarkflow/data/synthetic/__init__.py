"""Procedural synthetic faces with exact landmarks: 68 points in the 300W layout, or 98/29/19 in WFLW/COFW/AFLW's.

The embedded default dataset (the real benchmarks are licensed for research only): a 3-D template face
with random identity, expression and head pose, rendered with OpenCV over cluttered backgrounds, with
occluders that mark the points they cover as not visible.

- `face3d`: template, deformations, pose, silhouettes, projection.
- `params`: `FaceSpec` (everything one image depends on) and its random sampling.
- `render`: `render_face(spec, size)` -> image, landmarks, visibility, occluder mask.
- `layout_map`: the same face's points in the 98, 29 and 19 layouts, measured on what was drawn (one table).
- `plan`: the items of a dataset (stream, index, 300W folder) and each item's `FaceSpec`.
- `layout_files`: `LayoutFiles`, the strategy by which a layout names, records and writes the rendered faces.
- `w300_files`: the 68 layout's files (300W folders + `synthetic_meta.csv`); `benchmark_files`: WFLW, COFW, AFLW.
- `synthesis`: `synthesize`, the one render loop every layout goes through.

`landmarkflow.data.formats.synthetic` reads the 68 layout back; the other layouts are read by their benchmark's reader.
"""

from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS
from landmarkflow.data.synthetic.params import FaceSpec, Occluder, sample_spec
from landmarkflow.data.synthetic.render import RenderedFace, render_face
from landmarkflow.data.synthetic.synthesis import SynthReport, synthesize

__all__ = [
    "LAYOUT_DATASETS",
    "FaceSpec",
    "Occluder",
    "RenderedFace",
    "SynthReport",
    "render_face",
    "sample_spec",
    "synthesize",
]
