"""Loose boxes: each model's NME on a dataset's test faces from the dataset's own boxes, from evaluate's perturbed
boxes read once, and from the same boxes read again from the first answer's landmark box, as `predict` reads a
detected face (`Predictor.own_box_crops`; a layout trained on other boxes reads once either way).

A detector's box is not the landmark box the 68-point models learn from; this shows what the second read buys where
the box is loose, and what the first read alone would cost. Prints one JSON object.

    .venv/bin/python bench/bench_boxes.py [--dataset synthetic --root data/raw/synthetic] [--models hih dsat lgcn rdfn]

Needs the models in the MLflow store (`make pipeline-run` first): each model's champion, or its newest version. The
perturbation is evaluate's defaults (`EvalConfig`: centre moved by up to 20% of the box, size 0.8-1.5x, seed 0), so
`perturbed_once` is a run's `test_nme_perturbed` for HIH, DSAT and RDFN; for LGCN it is the deployed model's
shape-fitted points, where evaluate logs the graph's own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from landmarkflow.config import EvalConfig
from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.evaluation.perturb import perturb_boxes
from landmarkflow.imageio import read_rgb
from landmarkflow.inference import Predictor, load_registered
from landmarkflow.layouts import get_layout
from landmarkflow.tracking import registered_model_name


def box_reads(predictor: Predictor, faces: list[FaceRecord], root: Path) -> dict[str, float]:
    """Mean NME (the layout's default normaliser, with the dataset's boxes) read from the dataset's boxes, from the
    perturbed boxes once, and from the perturbed boxes with the second read."""
    layout = get_layout(predictor.info.layout)
    truths = np.stack([face.landmarks for face in faces]).astype(np.float64)
    boxes = np.stack([face.bbox for face in faces]).astype(np.float64)
    defaults = EvalConfig()
    moved = perturb_boxes(boxes, defaults.perturb_shift, defaults.perturb_scale, defaults.perturb_seed)
    images = [read_rgb(root / face.image_path) for face in faces]

    def nme(read_boxes: np.ndarray, loose: bool) -> float:
        found = [
            predictor.predict_image(im, [box], loose=loose)[0].landmarks
            for im, box in zip(images, read_boxes, strict=True)
        ]
        return float(per_image_nme(np.stack(found), truths, layout, boxes).mean())

    return {"given": nme(boxes, False), "perturbed_once": nme(moved, False), "perturbed_read_again": nme(moved, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", help="the format of --root")
    parser.add_argument("--root", type=Path, default=Path("data/raw/synthetic"))
    parser.add_argument("--split", default="test", help="the split to read (the configs' data.test_split)")
    parser.add_argument("--models", nargs="+", default=["hih", "dsat", "lgcn", "rdfn"])
    args = parser.parse_args()
    test = [r for r in read_dataset(args.dataset, args.root) if r.split == args.split]
    if not test:
        raise SystemExit(f"{args.root}: no {args.dataset} faces in split {args.split!r}")
    report: dict[str, object] = {"dataset": args.dataset, "split": args.split, "faces": len(test), "models": {}}
    for model in args.models:
        name = registered_model_name(model, args.dataset)
        predictor, version, _ = load_registered(name)
        report["models"][f"{name} v{version}"] = box_reads(predictor, test, args.root)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    try:
        main()
    except LookupError as exc:
        raise SystemExit(str(exc)) from None
