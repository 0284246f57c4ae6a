"""The default champions on a real photo, for the docs: every model's landmarks on the public-domain photo of the
astronaut Eileen Collins (NASA) that scikit-image ships, as it is and turned by 25 degrees (a tilted head), one row
per view, one column per model: each view read as `landmarkflow predict` reads a photo (the face detected, then read
again from its own box), and drawn around the detector's box. The turned view needs YuNet (detection.py): the LBP
cascade, where YuNet's wheel does not install, misses it.

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
from landmarkflow.detection import DETECTOR, detect_faces
from landmarkflow.imageio import write_image
from landmarkflow.inference import load_registered
from landmarkflow.tracking import registered_model_name

VIEWS = {"upright": 0.0, "turned": 25.0}  # degrees the photo is turned by
CELL = 320  # pixels per face in the sheet
MARGIN = 0.35  # crop margin around the detected box, as a fraction of its longer side
LABEL_BAND = 30  # pixels of the dark band the label is written on


def _view(image: np.ndarray, degrees: float) -> np.ndarray:
    """The photo turned by `degrees` about its centre."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _cell(image_rgb: np.ndarray, box: np.ndarray, points: np.ndarray, label: str) -> np.ndarray:
    side = (box[2:] - box[:2]).max() * (1 + 2 * MARGIN)
    centre = (box[:2] + box[2:]) / 2
    scale = CELL / side
    matrix = np.array([[scale, 0, CELL / 2 - scale * centre[0]], [0, scale, CELL / 2 - scale * centre[1]]])
    crop = cv2.warpAffine(
        cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), matrix, (CELL, CELL), flags=cv2.INTER_AREA, borderValue=(255,) * 3
    )
    cell = draw_landmarks(crop, points @ matrix[:, :2].T + matrix[:, 2])
    # One stroke on a dark band: with OpenCV 5 a thick and a thin stroke of the same text do not line up, and the
    # outline they made (thick light under thin dark) read as garbled letters.
    cv2.rectangle(cell, (0, 0), (CELL - 1, LABEL_BAND), (30, 30, 30), cv2.FILLED)
    cv2.putText(cell, label, (8, LABEL_BAND - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.65, (255, 255, 255), 1, cv2.LINE_AA)
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/real_faces.jpg"))
    parser.add_argument("--models", nargs="+", default=["hih", "dsat", "lgcn", "rdfn"])
    parser.add_argument("--dataset", default="synthetic", help="the registered models' dataset suffix")
    args = parser.parse_args()
    predictors = {}
    for model in args.models:
        predictor, version, role = load_registered(registered_model_name(model, args.dataset))
        predictors[f"{model.upper()} v{version} ({role})"] = predictor
    photo = skimage.data.astronaut()
    rows = []
    for view, degrees in VIEWS.items():
        image = _view(photo, degrees)
        found = detect_faces(image)
        if not found:
            raise SystemExit(f"the {DETECTOR} detector finds no face in the {view} astronaut photo")
        cells = []
        for label, predictor in predictors.items():
            (face,) = predictor.predict_image(image, [found[0].bbox], loose=True)  # as `predict` reads the largest
            cells.append(_cell(image, found[0].bbox, np.asarray(face.landmarks), label))
        rows.append(np.hstack(cells))
    write_image(args.out, np.vstack(rows))
    print(f"wrote {args.out} ({len(rows)} views x {len(predictors)} models)")


if __name__ == "__main__":
    try:
        main()
    except LookupError as exc:
        raise SystemExit(str(exc)) from None
