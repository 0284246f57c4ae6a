"""bench/bench_edges.py's measure: the cheek's strongest edge against the jaw outline's, in the model's crop."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from bench.bench_edges import CONFIG, LINES, edge_ratios
from landmarkflow.config import load_config
from landmarkflow.data.synthetic import render_face
from landmarkflow.data.synthetic.face3d import Pose
from landmarkflow.data.synthetic.params import Camera, sample_spec


def test_a_rendered_cheek_is_flat_beside_its_outline_until_an_edge_is_drawn_on_it() -> None:
    spec = sample_spec(np.random.default_rng(8), hard=False)
    face = render_face(replace(spec, pose=Pose(), face_size=0.7, occluders=(), camera=Camera()), 256)
    image = cv2.cvtColor(face.image, cv2.COLOR_BGR2RGB)
    crop = load_config(CONFIG).crop_spec
    assert np.median(edge_ratios(image, face.landmarks, crop)) < 0.5
    marked = image.copy()
    for jaw, (a, b) in LINES.items():  # a dark spot on each line, 0.8 of the way from the nose to the jaw
        start = (face.landmarks[a] + face.landmarks[b]) / 2
        spot = np.round(start + 0.8 * (face.landmarks[jaw] - start)).astype(int)
        cv2.circle(marked, tuple(int(v) for v in spot), 4, (0, 0, 0), -1)
    assert np.median(edge_ratios(marked, face.landmarks, crop)) > 1.0
