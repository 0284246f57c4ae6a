"""The evaluate step: the benchmark protocol on the test split, the mean-shape baseline and plots, logged to the run.

A manifest's private faces (300W-private) are measured on their own, as `private_*` metrics beside `test_*`;
real faces given beside the data, as `real_*` metrics (evaluation/real_faces.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.manifest import PRIVATE_SPLIT, FaceRecord, in_split, read_manifest, to_records
from landmarkflow.evaluation.baseline import MeanShape
from landmarkflow.evaluation.metrics import mean_nme, per_image_nme, summarize
from landmarkflow.evaluation.perturb import perturb_boxes
from landmarkflow.evaluation.plots import plot_model_on_faces
from landmarkflow.evaluation.predictions import CropPredictor, predict_records, predict_records_each, torch_predictor
from landmarkflow.evaluation.real_faces import PREFIX as REAL_PREFIX
from landmarkflow.evaluation.real_faces import RealFaces, measure_real_faces, read_real_faces
from landmarkflow.layouts import Layout, get_layout
from landmarkflow.outages import tracking_step
from landmarkflow.steps.results import EvalResult, TrainResult, require_same_manifest
from landmarkflow.tracking import log_metrics
from landmarkflow.train.checkpoint import load_model
from landmarkflow.upright import UprightPass

log = logging.getLogger(__name__)


@tracking_step
def evaluate(trained: TrainResult, out_dir: str | Path, real_faces: RealFaces | None = None) -> EvalResult:
    """Test-split NME/FR/AUC (overall and per subset), the mean-shape baseline, CED and overlay plots; the same
    NME/FR/AUC for the private split where the manifest has one, and for `real_faces` with their own CED and
    overlay when given."""
    require_same_manifest(trained)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, config = load_model(Path(trained.checkpoint))
    # Read first: a folder in the wrong layout fails before minutes of predicting.
    real_records = read_real_faces(real_faces, config.data.layout) if real_faces is not None else []
    records = to_records(read_manifest(trained.manifest))
    test, train_records = in_split(records, config.data.test_split), in_split(records, "train")
    if not test:
        splits = sorted({r.split for r in records})
        raise ValueError(
            f"{trained.manifest}: no faces in the {config.data.test_split!r} split (data.test_split); its splits: "
            f"{', '.join(splits) or 'none'}"
        )
    layout, root = get_layout(config.data.layout), Path(trained.root)
    gts = np.stack([r.landmarks for r in test])
    boxes = np.stack([r.bbox for r in test])
    train_landmarks = np.stack([r.landmarks for r in train_records])
    train_boxes = np.stack([r.bbox for r in train_records])
    predict = torch_predictor(model)
    upright = UprightPass.maybe(config.data.layout, config.data.upright_above_deg)
    refined = model.refined_predictor(train_landmarks, train_boxes, config.data.box_scale)
    post_steps = dict([refined] if refined is not None else [])
    # A post-step (LGCN's shape fitting) predicts on the same crops: read and warped once for both.
    crop_spec = config.crop_spec
    preds, *post_step_preds = predict_records_each(
        [predict, *post_steps.values()], test, root, crop_spec, config.eval.batch_size, upright=upright
    )
    nmes = per_image_nme(preds, gts, layout, boxes, config.data.normaliser)
    subsets = [r.subsets for r in test]
    metrics = summarize(nmes, config.eval.fr_threshold, config.eval.auc_threshold, subsets=subsets)
    baseline = MeanShape.fit(train_landmarks, train_boxes, config.data.box_scale, model.input_size)
    base_nmes = per_image_nme(baseline.predict(boxes), gts, layout, boxes, config.data.normaliser)
    baseline_metrics = summarize(base_nmes, config.eval.fr_threshold, config.eval.auc_threshold, subsets=subsets)
    moved = perturb_boxes(boxes, config.eval.perturb_shift, config.eval.perturb_scale, config.eval.perturb_seed)
    moved_preds = predict_records(predict, test, root, crop_spec, config.eval.batch_size, moved, upright)
    perturbed = {
        "nme_perturbed": mean_nme(moved_preds, test, layout, config.data.normaliser),
        "baseline_nme_perturbed": mean_nme(baseline.predict(moved), test, layout, config.data.normaliser),
    }
    test_plots = plot_model_on_faces(
        config.model.name,
        nmes,
        base_nmes,
        preds,
        test,
        root,
        config.eval.auc_threshold,
        config.eval.overlay_count,
        (out_dir / "ced.png", out_dir / "test_overlays.png"),
    )
    for step, step_preds in zip(post_steps, post_step_preds, strict=True):
        metrics[f"nme_{step}"] = mean_nme(step_preds, test, layout, config.data.normaliser)
        log.info("test NME with %s: %.3f%% (without: %.3f%%)", step, 100 * metrics[f"nme_{step}"], 100 * nmes.mean())
    private = in_split(records, PRIVATE_SPLIT)
    private_metrics = _split_metrics(predict, private, root, config, layout, upright) if private else {}
    real = None
    if real_faces is not None:
        real = measure_real_faces(
            predict, real_records, real_faces.root, config, baseline, out_dir, upright, post_steps
        )
        with_steps = "".join(f", with {step} {100 * real.metrics[f'nme_{step}']:.3f}%" for step in post_steps)
        log.info("real faces (%d, %s in %s): NME %.3f%%%s (face by face in %s)", real.faces, real_faces.dataset,
                 real_faces.root, 100 * real.metrics["nme"], with_steps, real.per_face.name)  # fmt: skip
    real_metrics = real.metrics if real is not None else {}
    client = MlflowClient()
    log_metrics(
        client,
        trained.run_id,
        {
            **{f"test_{key}": value for key, value in metrics.items()},
            **{f"{PRIVATE_SPLIT}_{key}": value for key, value in private_metrics.items()},
            **{f"{REAL_PREFIX}_{key}": value for key, value in real_metrics.items()},
            **{f"baseline_{key}": value for key, value in baseline_metrics.items()},
            "baseline_over_model_nme": float(base_nmes.mean() / max(nmes.mean(), 1e-12)),
            "test_nme_perturbed": perturbed["nme_perturbed"],
            "baseline_nme_perturbed": perturbed["baseline_nme_perturbed"],
        },
    )
    plots = [*test_plots, *(real.plots if real is not None else [])]
    for plot in plots:
        client.log_artifact(trained.run_id, str(plot), "plots")
    if real is not None:
        client.log_artifact(trained.run_id, str(real.per_face))
    log.info(
        "test NME %.3f%% (mean-shape baseline %.3f%%, %.1fx), FR %s, AUC %s",
        100 * metrics["nme"],
        100 * baseline_metrics["nme"],
        baseline_metrics["nme"] / max(metrics["nme"], 1e-12),
        {k: round(v, 4) for k, v in metrics.items() if k.startswith("fr")},
        {k: round(v, 4) for k, v in metrics.items() if k.startswith("auc")},
    )
    log.info(
        "perturbed boxes (centre +-%g, scale %s): NME %.3f%% (mean shape %.3f%%)",
        config.eval.perturb_shift,
        config.eval.perturb_scale,
        100 * perturbed["nme_perturbed"],
        100 * perturbed["baseline_nme_perturbed"],
    )
    if private_metrics:
        log.info("%s faces (%d, not gated): NME %.3f%%", PRIVATE_SPLIT, len(private), 100 * private_metrics["nme"])
    return EvalResult(
        trained.run_id,
        metrics,
        baseline_metrics,
        [str(plot) for plot in plots],
        perturbed,
        private_metrics,
        real_metrics,
    )


def _split_metrics(
    predict: CropPredictor,
    records: list[FaceRecord],
    root: Path,
    config: ExperimentConfig,
    layout: Layout,
    upright: UprightPass | None,
) -> dict[str, float]:
    """NME/FR/AUC of the model on one split's faces, under the names `summarize` gives the test split."""
    preds = predict_records(predict, records, root, config.crop_spec, config.eval.batch_size, upright=upright)
    gts, boxes = np.stack([r.landmarks for r in records]), np.stack([r.bbox for r in records])
    nmes = per_image_nme(preds, gts, layout, boxes, config.data.normaliser)
    return summarize(nmes, config.eval.fr_threshold, config.eval.auc_threshold)
