"""The evaluate step on a 300W folder with private faces: they are measured on their own and never reach `test_*`
(the numbers the gate reads)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from landmarkflow import steps
from landmarkflow.data.manifest import PRIVATE_SPLIT, FaceRecord, in_split, write_manifest
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.evaluation.predictions import predict_records, torch_predictor
from landmarkflow.layouts import get_layout
from landmarkflow.tracking import ensure_experiment, experiment_name
from landmarkflow.train.checkpoint import load_model, save_checkpoint
from tests.fakes import DOTS_HIH, dots_hih, write_random_300w

FACES = {"afw": 3, "helen/testset": 2, "ibug": 2, "01_Indoor": 2, "02_Outdoor": 1}
CONFIG = {"name": "hih_300w_dots", "model": {**DOTS_HIH, "num_points": 68}, "data": {"dataset": "300w"}}


def _nmes(checkpoint: Path, records: list[FaceRecord], root: Path) -> np.ndarray:
    model, config = load_model(checkpoint)
    preds = predict_records(torch_predictor(model), records, root, config.crop_spec, config.eval.batch_size)
    gts, boxes = np.stack([r.landmarks for r in records]), np.stack([r.bbox for r in records])
    return per_image_nme(preds, gts, get_layout("68"), boxes, config.data.normaliser)


def test_private_faces_are_reported_on_their_own_and_kept_out_of_the_test_metrics(tmp_path: Path) -> None:
    root = tmp_path / "300W"
    records = write_random_300w(root, FACES)
    manifest = write_manifest(records, tmp_path / "manifest.parquet")
    test, private = in_split(records, "test"), in_split(records, PRIVATE_SPLIT)
    assert (len(test), len(private)) == (4, 3)
    assert all(not r.subsets for r in private) and all("full" in r.subsets for r in test)

    torch.manual_seed(0)
    config = {**CONFIG, "data": {**CONFIG["data"], "root": str(root)}}
    checkpoint = save_checkpoint(tmp_path / "model.pt", {"config": config, "model": dots_hih().state_dict()})
    run_id = mlflow.MlflowClient().create_run(ensure_experiment(experiment_name("300w"))).info.run_id
    trained = steps.TrainResult(
        run_id, str(checkpoint), "", "", "hih", "300w", "", str(manifest), str(root), 0.0, 0.0, config
    )
    evaluated = steps.evaluate(trained, tmp_path / "eval")

    test_nmes, private_nmes = _nmes(checkpoint, test, root), _nmes(checkpoint, private, root)
    assert evaluated.nme == pytest.approx(test_nmes.mean(), rel=1e-9)  # what the gate reads: the test faces only
    assert evaluated.nme != pytest.approx(np.concatenate([test_nmes, private_nmes]).mean(), rel=1e-6)
    assert sorted(evaluated.private_metrics) == ["auc_10", "fr_10", "nme"]
    assert evaluated.private_metrics["nme"] == pytest.approx(private_nmes.mean(), rel=1e-9)
    assert not any(PRIVATE_SPLIT in key for key in evaluated.metrics)
    logged = mlflow.MlflowClient().get_run(run_id).data.metrics
    assert {f"private_{key}": value for key, value in evaluated.private_metrics.items()}.items() <= logged.items()
    assert logged["test_nme"] == pytest.approx(evaluated.nme) and "test_nme_private" not in logged
    assert steps.EvalResult.load(evaluated.save(tmp_path / "eval.json")).private_metrics == evaluated.private_metrics
