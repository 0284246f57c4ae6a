"""How far real faces' 68-point shapes lie outside the shapes the renderer draws, and where the models' error on
real faces lies.

The train split's shapes, each similarity-aligned to their Procrustes mean (the frame of the models' shape
calibration), deviate from it along a few principal modes: pose, then the renderer's identity and expression
parameters. For each set of faces this prints the median distance of a shape from the span of the first `--modes`
modes (RMS a point, in eye distances: small for the renderer's own shapes), of its near-frontal faces and of all. With
`--models`, each registered champion's answers for each set (from the tight landmark box) are split, in the truth's
aligned frame, into the share of their squared error that a similarity of the whole shape would undo (placement, size,
roll; linearised at the mean shape), the share in the first modes, and the rest; and the median log ratio of the
answer's size to the truth's. A model without a champion is read at its newest version, and the output says which.
Prints one JSON object.

    .venv/bin/python bench/bench_shapes.py [--root data/raw/synthetic] --real DIR [DIR ...] [--modes 16]
        [--models hih dsat lgcn rdfn]

--real: folders of real annotated faces in the 300W layout (../shared/tools/real_dev_faces.py,
tools/dlib_example_faces.py). --models needs the registered models (MLFLOW_TRACKING_URI as the Makefile sets it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.validation.drift import head_pose
from landmarkflow.geometry import landmark_box
from landmarkflow.imageio import read_rgb
from landmarkflow.inference import load_registered
from landmarkflow.layouts import IBUG_68
from landmarkflow.models.shape_calibration import align_to, procrustes_mean
from landmarkflow.tracking import registered_model_name

FRONTAL = 0.3
"""The largest |turn| (the nose's offset from the eyes' midpoint, in eye distances) of a near-frontal face."""


class ShapeSpace:
    """The train shapes' Procrustes mean, their principal modes, and the similarity directions at the mean."""

    def __init__(self, train: np.ndarray) -> None:
        self.mean = procrustes_mean(train)
        aligned = align_to(self.mean, train)[0]
        _, singular, self.modes = np.linalg.svd(aligned - self.mean.reshape(-1), full_matrices=False)
        self.variance = singular**2
        self.eye_distance = float(IBUG_68.normalising_distance(self.mean[None], normaliser="inter_pupil")[0])
        x, y = self.mean[:, 0], self.mean[:, 1]
        shifts = [np.tile([1.0, 0.0], len(x)), np.tile([0.0, 1.0], len(x))]
        self.similarity = np.stack([*shifts, self.mean.reshape(-1), np.stack([-y, x], axis=1).reshape(-1)])

    def basis(self, modes: int, similarity: bool = False) -> np.ndarray:
        """Orthonormal columns spanning the first `modes` modes (and the similarity directions)."""
        rows = [self.similarity] if similarity else []
        return np.linalg.qr(np.concatenate([*rows, self.modes[:modes]]).T)[0]

    def off_space(self, shapes: np.ndarray, modes: int) -> np.ndarray:
        """Per shape, its RMS distance a point from the span of the first `modes` modes, in eye distances."""
        rest = align_to(self.mean, shapes)[0] - self.mean.reshape(-1)
        basis = self.basis(modes)
        rest -= rest @ basis @ basis.T
        return rms_per_point(rest) / self.eye_distance

    def error_shares(self, truths: np.ndarray, answers: np.ndarray, modes: int) -> dict[str, float]:
        """Shares of the answers' squared error (in the truths' aligned frames) that a similarity, the first `modes`
        modes and the rest hold."""
        truth, answer = align_to(self.mean, truths, answers)
        error = answer - truth
        total = (error**2).sum()
        similarity = self.basis(0, similarity=True)
        by_similarity = error @ similarity @ similarity.T
        both = self.basis(modes, similarity=True)
        by_both = error @ both @ both.T
        return {
            "similarity": float((by_similarity**2).sum() / total),
            f"modes_1_{modes}": float(((by_both - by_similarity) ** 2).sum() / total),
            "rest": float(((error - by_both) ** 2).sum() / total),
        }


def rms_per_point(flat: np.ndarray) -> np.ndarray:
    return np.sqrt((flat.reshape(len(flat), -1, 2) ** 2).sum(axis=2).mean(axis=1))


def shapes_of(records: list[FaceRecord]) -> np.ndarray:
    return np.stack([record.landmarks for record in records])


def spread(space: ShapeSpace, shapes: np.ndarray, modes: int) -> dict[str, float | int | None]:
    off = space.off_space(shapes, modes)
    frontal = np.abs(head_pose(shapes, "68")[0]) < FRONTAL
    return {
        "faces": len(shapes),
        "near_frontal": int(frontal.sum()),
        "off_space_near_frontal": float(np.median(off[frontal])) if frontal.any() else None,
        "off_space_all": float(np.median(off)),
    }


def model_errors(
    space: ShapeSpace, model: str, faces: dict[str, tuple[Path, list[FaceRecord]]], modes: int
) -> dict[str, dict]:
    predictor, version, role = load_registered(registered_model_name(model, "synthetic"))
    out = {}
    for name, (root, records) in faces.items():
        answers = np.stack(
            [
                predictor.predict_image(read_rgb(root / r.image_path), [landmark_box(r.landmarks)])[0].landmarks
                for r in records
            ]
        )
        truths = shapes_of(records)
        size = np.log(rms_per_point(answers - answers.mean(axis=1, keepdims=True)))
        size -= np.log(rms_per_point(truths - truths.mean(axis=1, keepdims=True)))
        out[name] = {**space.error_shares(truths, answers, modes), "size_log_ratio": float(np.median(size))}
    return {f"v{version} ({role})": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("data/raw/synthetic"), help="the rendered faces (300W)")
    parser.add_argument("--real", type=Path, nargs="+", required=True, help="folders of real faces (300W)")
    parser.add_argument("--modes", type=int, default=16, help="how many of the train shapes' modes span the space")
    parser.add_argument("--models", nargs="*", default=[], help="champions whose error on the real faces to split")
    args = parser.parse_args()
    rendered = read_dataset("300w", args.root)
    space = ShapeSpace(shapes_of([r for r in rendered if r.split == "train"]))
    faces = {"rendered_test": (args.root, [r for r in rendered if r.split == "test"])}
    faces.update({str(folder): (folder, read_dataset("300w", folder)) for folder in args.real})
    report = {
        "modes": args.modes,
        "variance_share": float(space.variance[: args.modes].sum() / space.variance.sum()),
        "spread": {name: spread(space, shapes_of(records), args.modes) for name, (_, records) in faces.items()},
        "models": {model: model_errors(space, model, faces, args.modes) for model in args.models},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
