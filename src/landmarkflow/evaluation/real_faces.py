"""Real annotated faces measured beside the test split: how a model trained on rendered faces does on photographs.

The faces come in any format a reader knows (300W, WFLW, COFW, AFLW), every split of the folder counted, with the
boxes that format gives; they are measured with the benchmark's normaliser (inter-ocular for 68/98/29 points), so
`real_nme` reads like `test_nme`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.baseline import MeanShape
from landmarkflow.evaluation.metrics import per_image_nme, summarize
from landmarkflow.evaluation.plots import plot_model_on_faces
from landmarkflow.evaluation.predictions import CropPredictor, predict_records_each
from landmarkflow.fileio import atomic_write_text
from landmarkflow.geometry import box_overlaps_image, landmark_box
from landmarkflow.layouts import get_layout
from landmarkflow.upright import UprightPass

PREFIX = "real"
"""Metric names of the real faces: `real_nme`, `real_fr_10`, `real_auc_10`, and `real_nme_<post-step>` (LGCN's
`real_nme_shape_fitted`: what its deployed model answers)."""
PER_FACE = f"{PREFIX}_faces.json"
"""Each real face's NME (and with each post-step) and the mean shape's, worst first: which photos the model fails
on."""


@dataclass(frozen=True)
class RealFaces:
    """A folder of real annotated faces: `dataset` names its format's reader (300w, wflw, cofw, cofw68, aflw)."""

    dataset: str
    root: Path


@dataclass(frozen=True)
class RealFacesReport:
    """The real faces' NME/FR/AUC (unprefixed, as `summarize` names them), the plots drawn of them and the file of
    their NMEs face by face (`PER_FACE`)."""

    faces: int
    metrics: dict[str, float]
    plots: list[Path]
    per_face: Path


def read_real_faces(real: RealFaces, layout: str) -> list[FaceRecord]:
    """Every face under `real.root`, checked to be in the model's `layout` and on its image."""
    records = read_dataset(real.dataset, real.root)
    if not records:
        raise ValueError(f"{real.root}: no {real.dataset} faces found to measure the model on real faces")
    others = sorted({r.layout for r in records} - {layout})
    if others:
        raise ValueError(
            f"{real.root}: the real {real.dataset} faces have {'/'.join(others)} points, but the model predicts "
            f"the {layout}-point layout; give real faces annotated in the model's layout"
        )
    # A face may reach past the border; one annotated for another image (or scale) lies elsewhere, and would be
    # scored as the model's failure.
    off = [r for r in records if not box_overlaps_image(landmark_box(r.landmarks), r.width, r.height)]
    if off:
        first = off[0]
        box = ", ".join(f"{v:.0f}" for v in landmark_box(first.landmarks))
        raise ValueError(
            f"{real.root}: {len(off)} real faces' landmarks lie wholly off their image, the first "
            f"{first.image_path} (points in {box} on a {first.width} x {first.height} image); expected points in "
            "the image's own pixels"
        )
    return records


def measure_real_faces(
    predict: CropPredictor,
    records: list[FaceRecord],
    root: Path,
    config: ExperimentConfig,
    baseline: MeanShape,
    out_dir: Path,
    upright: UprightPass | None,
    post_steps: Mapping[str, CropPredictor] | None = None,
) -> RealFacesReport:
    """NME/FR/AUC of the model on `records` (images under `root`), their CED beside the mean shape's, an overlay of
    the faces with the predicted (red) and true (green) landmarks, and each face's NME in `out_dir/PER_FACE`; with
    the upright second pass where evaluate makes it. Each post-step (LGCN's shape fit) adds `nme_<name>`, measured
    on the same crops, as evaluate reports it for the test split."""
    layout = get_layout(config.data.layout)
    post_steps = post_steps or {}
    preds, *post_step_preds = predict_records_each(
        [predict, *post_steps.values()], records, root, config.crop_spec, config.eval.batch_size, upright=upright
    )
    gts, boxes = np.stack([r.landmarks for r in records]), np.stack([r.bbox for r in records])
    nmes = per_image_nme(preds, gts, layout, boxes, config.data.normaliser)
    post_step_nmes = {
        f"nme_{name}": per_image_nme(step_preds, gts, layout, boxes, config.data.normaliser)
        for name, step_preds in zip(post_steps, post_step_preds, strict=True)
    }
    base_nmes = per_image_nme(baseline.predict(boxes), gts, layout, boxes, config.data.normaliser)
    plots = plot_model_on_faces(
        f"{config.model.name} on real faces",
        nmes,
        base_nmes,
        preds,
        records,
        root,
        config.eval.auc_threshold,
        config.eval.overlay_count,
        (out_dir / f"{PREFIX}_ced.png", out_dir / f"{PREFIX}_overlays.png"),
        titled=True,
    )
    metrics = summarize(nmes, config.eval.fr_threshold, config.eval.auc_threshold)
    metrics.update({key: float(step_nmes.mean()) for key, step_nmes in post_step_nmes.items()})
    faces = [
        {
            "face": r.sample_id,
            "image": r.image_path,
            "nme": float(nmes[i]),
            **{key: float(step_nmes[i]) for key, step_nmes in post_step_nmes.items()},
            "mean_shape_nme": float(base_nmes[i]),
        }
        for i, r in enumerate(records)
    ]
    per_face = out_dir / PER_FACE
    atomic_write_text(per_face, json.dumps(sorted(faces, key=lambda face: -face["nme"]), indent=1) + "\n")
    return RealFacesReport(len(records), metrics, plots, per_face)
