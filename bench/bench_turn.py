"""Turn read-out: each model's NME on a dataset's test faces by how far each face is turned, and how much of the
turn it reads.

A model that under-reads a turned face answers a more frontal one: the far-side jaw inside the silhouette, the mouth
too wide. The turn is the drift profile's yaw proxy (the nose's offset from the eyes' midpoint along the eye line, in
eye distances: 0 frontal, about 0.5 at 45°). "read" is the least-squares slope of the predicted faces' turn on the
true one within a band of turns: 1 reads the whole turn, 0.8 a fifth too little. On the synthetic default the turns
are the renderer's own, so this measures the models on their training distribution. Prints one JSON object.

    .venv/bin/python bench/bench_turn.py [--dataset synthetic --root data/raw/synthetic] [--models hih dsat lgcn rdfn]
    .venv/bin/python bench/bench_turn.py --clean 800 [--bands 0 0.1 0.2 0.3 0.45 0.6 0.8]

On the synthetic test split every face turned past 45° is a challenging one (blurred, noisy, most of them occluded),
so its turned bands measure the turn and that damage together. `--clean N` renders N faces instead (a seed no model
trained on), drawn as the train split's wide-yaw quarter is (turned within ±65°) and none challenging: the turn alone.

Needs the models in the MLflow store (`make pipeline-run` first): each model's champion, or its newest version. Faces
are read with the tight box of their landmarks, as evaluate and the real-face measure read them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.manifest import TRAIN_SPLIT, FaceRecord
from landmarkflow.data.synthetic import synthesize
from landmarkflow.data.validation.drift import head_pose
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.geometry import landmark_box
from landmarkflow.imageio import read_rgb
from landmarkflow.inference import Predictor, load_registered
from landmarkflow.layouts import get_layout
from landmarkflow.tracking import registered_model_name

BANDS = (0.0, 0.1, 0.2, 0.3, 0.45)
"""Lower edges of the bands of |turn|; the last band is open."""
CLEAN_SEED = 4242
"""The seed of `--clean`'s faces; the pipeline renders its data with seed 0."""


def turn_bands(
    true_turn: np.ndarray, predicted_turn: np.ndarray, nme: np.ndarray, edges: tuple[float, ...] = BANDS
) -> list[dict[str, float | int | str]]:
    """Per band of |true turn|: how many faces, their mean NME and the slope of the predicted turn on the true one
    (NaN in a band without faces or without a turn to read)."""
    magnitude = np.abs(true_turn)
    bands = []
    for low, high in zip(edges, (*edges[1:], np.inf), strict=True):
        inside = (magnitude >= low) & (magnitude < high)
        truth, predicted = true_turn[inside], predicted_turn[inside]
        spread = float((truth**2).sum())
        bands.append(
            {
                "band": f"[{low:g}, {high:g})",
                "faces": int(inside.sum()),
                "nme": float(nme[inside].mean()) if inside.any() else float("nan"),
                "turn_read": float((predicted * truth).sum() / spread) if spread > 0 else float("nan"),
            }
        )
    return bands


def read_turns(predictor: Predictor, faces: list[FaceRecord], root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The true and predicted turn of every face, and its NME (the layout's default normaliser)."""
    layout = get_layout(predictor.info.layout)
    truths = np.stack([face.landmarks for face in faces]).astype(np.float64)
    boxes = np.stack([landmark_box(truth) for truth in truths])
    predictions = np.stack(
        [
            predictor.predict_image(read_rgb(root / face.image_path), [box])[0].landmarks
            for face, box in zip(faces, boxes, strict=True)
        ]
    )
    nme = per_image_nme(predictions, truths, layout, boxes)
    return head_pose(truths, layout.name)[0], head_pose(predictions, layout.name)[0], nme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", help="the format of --root")
    parser.add_argument("--root", type=Path, default=Path("data/raw/synthetic"))
    parser.add_argument("--split", default="test", help="the split to read (the configs' data.test_split)")
    parser.add_argument("--models", nargs="+", default=["hih", "dsat", "lgcn", "rdfn"])
    parser.add_argument("--clean", type=int, default=0, metavar="N", help="read N rendered clean faces instead")
    parser.add_argument("--bands", type=float, nargs="+", default=BANDS, help="lower edges of the bands of |turn|")
    args = parser.parse_args()
    if args.clean < 0:
        parser.error(f"--clean {args.clean}: expected a number of faces, 0 (read --root) or more")
    if args.bands[0] != 0 or list(args.bands) != sorted(set(args.bands)):
        parser.error(f"--bands {args.bands}: expected rising lower edges from 0")
    with tempfile.TemporaryDirectory() as rendered:
        if args.clean:
            args.dataset, args.root, args.split = "synthetic", Path(rendered), TRAIN_SPLIT
            synthesize(
                args.root,
                args.clean,
                1,
                seed=CLEAN_SEED,
                hard_train_fraction=0,
                wide_yaw_train_fraction=1,
                progress=False,
            )
        report = measure(args)
    print(json.dumps(report, indent=2))


def measure(args: argparse.Namespace) -> dict[str, object]:
    """The report of `main`'s arguments: each model's bands on the faces of the split."""
    records = read_dataset(args.dataset, args.root)
    test = [r for r in records if r.split == args.split]
    if not test:
        raise SystemExit(f"{args.root}: no {args.dataset} faces in split {args.split!r}")
    turns = np.abs(head_pose(np.stack([r.landmarks for r in test]), test[0].layout)[0])
    report: dict[str, object] = {
        "dataset": args.dataset,
        "split": args.split,
        "clean": bool(args.clean),
        "faces": len(test),
        "turn_quantiles": {f"{q:g}": float(np.nanquantile(turns, q)) for q in (0.5, 0.9, 0.99)},
        "models": {},
    }
    for model in args.models:
        name = registered_model_name(model, args.dataset)
        predictor, version, _ = load_registered(name)
        true_turn, predicted_turn, nme = read_turns(predictor, test, args.root)
        report["models"][f"{name} v{version}"] = turn_bands(true_turn, predicted_turn, nme, tuple(args.bands))
    return report


if __name__ == "__main__":
    try:
        main()
    except LookupError as exc:
        raise SystemExit(str(exc)) from None
