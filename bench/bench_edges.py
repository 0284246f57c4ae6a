"""Cheek edges against the outline: how strong a face's cheek edges are next to the edge its jaw lies on, as a
68-point model sees the face (its crop of the tight landmark box: the config's input size and box scale).

Along six lines from the nose out through jaw points 1-3 and 13-15, the strongest grey-level gradient on the cheek (0.7
to 0.93 of the way out) over the strongest one on the jaw's outline (0.95 to 1.05). Near 0: the outline is the one
edge there, as on a rendered face; about 1 or more: the cheek carries edges as strong as the outline, as on photos,
where the default models put the jaw on an inner edge (docs/real_faces.md, What still fails). A renderer change meant
to close that gap can be checked here in seconds, before any training. Prints one JSON object: quartiles over the
lines of the dataset's near-frontal test faces, and of each real face.

    .venv/bin/python bench/bench_edges.py [--root data/raw/synthetic] [--real DIR] [--faces 80] [--config CONFIG]

--real: a folder of real annotated faces in the 300W layout (e.g. what ../shared/tools/real_dev_faces.py writes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from landmarkflow.config import load_config
from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.validation.drift import head_pose
from landmarkflow.geometry import CropSpec, landmark_box, transform_points
from landmarkflow.imageio import read_rgb

CONFIG = Path("configs/hih_synthetic_tiny.yaml")  # whose crop the faces are measured in
LINES = {1: (27, 30), 2: (27, 30), 3: (30, 30), 13: (30, 30), 14: (27, 30), 15: (27, 30)}
"""Jaw point -> the two points whose midpoint the line starts from (the nose's bridge and tip, or the tip alone)."""
CHEEK, OUTLINE = (0.7, 0.93), (0.95, 1.05)
FRONTAL = 0.1  # the largest |turn| (drift profile's yaw proxy) of a synthetic face measured


def edge_ratios(image_rgb: np.ndarray, landmarks: np.ndarray, crop_spec: CropSpec) -> np.ndarray:
    """(6,) cheek-to-outline gradient ratios of one face, in its model's crop."""
    matrix = crop_spec.matrix(landmark_box(landmarks))
    grey = cv2.cvtColor(crop_spec.cut(image_rgb, matrix), cv2.COLOR_RGB2GRAY).astype(np.float32)
    points = transform_points(landmarks, matrix)
    share = np.linspace(0.5, 1.3, 81)
    ratios = []
    for jaw, (a, b) in LINES.items():
        start = (points[a] + points[b]) / 2
        line = (start + share[:, None] * (points[jaw] - start)).astype(np.float32)
        values = cv2.remap(grey, line[:, :1], line[:, 1:], cv2.INTER_LINEAR).ravel()
        gradient = np.abs(np.gradient(values))
        cheek = gradient[(share > CHEEK[0]) & (share < CHEEK[1])].max()
        outline = gradient[(share > OUTLINE[0]) & (share < OUTLINE[1])].max()
        ratios.append(cheek / max(outline, 1e-6))
    return np.array(ratios)


def quartiles(ratios: np.ndarray) -> list[float]:
    return [round(float(q), 3) for q in np.quantile(ratios, [0.25, 0.5, 0.75])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("data/raw/synthetic"), help="a 68-point dataset, 300W layout")
    parser.add_argument("--real", type=Path, default=None, help="real annotated faces, 300W layout")
    parser.add_argument("--faces", type=int, default=80, help="near-frontal test faces measured")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the experiment config whose crop is measured")
    args = parser.parse_args()
    crop = load_config(args.config).crop_spec
    test = [record for record in read_dataset("300w", args.root) if record.split == "test"]
    turns = np.abs(head_pose(np.stack([record.landmarks for record in test]), "68")[0])
    frontal = [record for record, turn in zip(test, turns, strict=True) if turn < FRONTAL][: args.faces]
    ratios = np.concatenate([edge_ratios(read_rgb(args.root / r.image_path), r.landmarks, crop) for r in frontal])
    result: dict[str, object] = {
        "benchmark": "edges",
        "dataset": {"root": str(args.root), "faces": len(frontal), "quartiles": quartiles(ratios)},
    }
    if args.real is not None:
        result["real"] = {
            Path(r.image_path).stem: quartiles(edge_ratios(read_rgb(args.real / r.image_path), r.landmarks, crop))
            for r in read_dataset("300w", args.real)
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
