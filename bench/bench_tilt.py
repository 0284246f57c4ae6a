"""Tilt robustness on real annotated faces: each model's NME on the faces as they are and with every photo rolled
about its landmarks' centre, with the tight box of the rolled landmarks (the box `evaluate --real-faces` uses).

Real photos of tilted heads are common (300W's challenging faces), while a folder of a few real faces is mostly
upright; rolling it shows whether a model reads a tilted face or answers an upright shape. Prints one JSON object.

    .venv/bin/python bench/bench_tilt.py REAL_FACES [--dataset 300w] [--degrees 15 30] [--models hih dsat lgcn rdfn]

Needs the models in the MLflow store (`make pipeline-run` first; MLFLOW_TRACKING_URI as the Makefile sets it): each
model's champion, or its newest version when it has none. Each angle is applied both ways (+ and -); the rolled
photo's corners beyond the original are black.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.evaluation.real_faces import RealFaces, read_real_faces
from landmarkflow.geometry import landmark_box
from landmarkflow.imageio import read_rgb
from landmarkflow.inference import Predictor, load_registered
from landmarkflow.layouts import get_layout
from landmarkflow.tracking import registered_model_name


def rolled(image: np.ndarray, points: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo rolled by `degrees` (counter-clockwise on screen) about the landmarks' centre, and the points."""
    centre = points.mean(axis=0)
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    height, width = image.shape[:2]
    return cv2.warpAffine(image, turn, (width, height), flags=cv2.INTER_LINEAR), points @ turn[:, :2].T + turn[:, 2]


def tilt_nmes(predictor: Predictor, faces: list[FaceRecord], photos: list[np.ndarray], degrees: float) -> list[float]:
    """Per-face NME (the layout's default normaliser) with every face (and its RGB photo) rolled by `degrees`."""
    layout = get_layout(predictor.info.layout)
    truths, predictions, boxes = [], [], []
    for face, photo in zip(faces, photos, strict=True):
        image, truth = rolled(photo, face.landmarks, degrees)
        box = landmark_box(truth)
        predictions.append(predictor.predict_image(image, [box])[0].landmarks)
        truths.append(truth)
        boxes.append(box)
    return per_image_nme(np.stack(predictions), np.stack(truths), layout, np.stack(boxes)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real_faces", type=Path, help="a folder of real annotated faces")
    parser.add_argument("--dataset", default="300w", help="their format: 300w, wflw, cofw, cofw68 or aflw")
    parser.add_argument("--degrees", type=float, nargs="+", default=[15.0, 30.0])
    parser.add_argument("--models", nargs="+", default=["hih", "dsat", "lgcn", "rdfn"])
    parser.add_argument("--registered-dataset", default="synthetic", help="the registered models' dataset suffix")
    args = parser.parse_args()
    angles = [0.0] + [sign * d for d in args.degrees for sign in (1.0, -1.0)]
    models: dict[str, dict[str, object]] = {}
    for model in args.models:
        name = registered_model_name(model, args.registered_dataset)
        predictor, version, _ = load_registered(name)
        faces = read_real_faces(RealFaces(args.dataset, args.real_faces), predictor.info.layout)
        photos = [read_rgb(args.real_faces / face.image_path) for face in faces]
        per_angle = {angle: tilt_nmes(predictor, faces, photos, angle) for angle in angles}
        models[f"{name} v{version}"] = {
            "faces": [face.image_path for face in faces],
            "nme": {f"{angle:+g}": float(np.mean(nmes)) for angle, nmes in per_angle.items()},
            "nme_by_face": {f"{angle:+g}": nmes for angle, nmes in per_angle.items()},
            "nme_upright": float(np.mean(per_angle[0.0])),
            "nme_rolled": float(np.mean([np.mean(n) for angle, n in per_angle.items() if angle])),
        }
    print(json.dumps({"real_faces": str(args.real_faces), "models": models}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except LookupError as exc:
        raise SystemExit(str(exc)) from None
