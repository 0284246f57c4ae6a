"""The default champions on real photos, for the docs: every model's landmarks on the public-domain / CC0 photos
with faces that scikit-image ships (the astronaut Eileen Collins, NASA; the cameraman, CC0), one row per photo, one
column per model, each cropped around the detected face.

    .venv/bin/python bench/draw_real_faces.py [--out docs/real_faces.jpg] [--models hih dsat lgcn rdfn]

Needs the models in the MLflow store (`make pipeline-run` first; MLFLOW_TRACKING_URI as the Makefile sets it): each
model's champion, or its newest version (labelled so) when it has none.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from landmarkflow.data.draw import draw_landmarks
from landmarkflow.detection import detect_faces
from landmarkflow.fileio import atomic_write_bytes
from landmarkflow.inference import Predictor
from landmarkflow.registry import CHAMPION, latest_version, version_by_alias
from landmarkflow.tracking import registered_model_name, setup_tracking

PHOTOS = {"astronaut": skimage.data.astronaut, "camera": skimage.data.camera}
CELL = 320  # pixels per face in the sheet
MARGIN = 0.35  # crop margin around the detected box, as a fraction of its longer side


def _rgb(name: str) -> np.ndarray:
    image = PHOTOS[name]()
    return np.dstack([image] * 3) if image.ndim == 2 else image


def _cell(image_rgb: np.ndarray, box: np.ndarray, points: np.ndarray, label: str) -> np.ndarray:
    drawn = draw_landmarks(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), points, radius=3)
    side = (box[2:] - box[:2]).max() * (1 + 2 * MARGIN)
    centre = (box[:2] + box[2:]) / 2
    scale = CELL / side
    matrix = np.array([[scale, 0, CELL / 2 - scale * centre[0]], [0, scale, CELL / 2 - scale * centre[1]]])
    cell = cv2.warpAffine(drawn, matrix, (CELL, CELL), flags=cv2.INTER_AREA, borderValue=(255, 255, 255))
    cv2.putText(cell, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(cell, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (20, 20, 20), 1, cv2.LINE_AA)
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/real_faces.jpg"))
    parser.add_argument("--models", nargs="+", default=["hih", "dsat", "lgcn", "rdfn"])
    parser.add_argument("--dataset", default="synthetic", help="the registered models' dataset suffix")
    args = parser.parse_args()
    setup_tracking(must_exist=True)
    predictors = {}
    for model in args.models:
        name = registered_model_name(model, args.dataset)
        version = version_by_alias(name, CHAMPION) or latest_version(name)
        if version is None:
            raise SystemExit(f"{name}: no registered version (run `make pipeline-run` first)")
        role = CHAMPION if version_by_alias(name, CHAMPION) else "newest"
        predictors[f"{model.upper()} v{version.version} ({role})"] = Predictor.load(f"models:/{name}/{version.version}")
    rows = []
    for name in PHOTOS:
        image = _rgb(name)
        faces = detect_faces(image)
        if not faces:
            print(f"{name}: no face detected, left out")
            continue
        box = np.asarray(max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])).bbox, float)
        cells = []
        for label, predictor in predictors.items():
            (face,) = predictor.predict_image(image, [box])
            cells.append(_cell(image, box, np.asarray(face.landmarks), label))
        rows.append(np.hstack(cells))
    if not rows:
        raise SystemExit("no face detected in any photo")
    ok, encoded = cv2.imencode(args.out.suffix, np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise RuntimeError(f"cannot encode an image as {args.out.suffix!r}")
    atomic_write_bytes(args.out, encoded.tobytes())
    print(f"wrote {args.out} ({len(rows)} photos x {len(predictors)} models)")


if __name__ == "__main__":
    main()
