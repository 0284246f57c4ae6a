"""The export step in a reused folder: what an earlier export left beside its ONNX (an LGCN's shape model, a TensorRT
engine) is not this model's, and predict and register would take it as this model's."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import torch

from landmarkflow import steps
from landmarkflow.data.manifest import write_manifest
from landmarkflow.inference import Predictor
from landmarkflow.models.lgcn_shape import ShapeModel
from landmarkflow.runtime import ENGINE_PRECISIONS, SHAPE_MODEL_FILE, engine_file
from landmarkflow.tracking import ensure_experiment, experiment_name
from landmarkflow.train.checkpoint import save_checkpoint
from tests.fakes import DOTS_HIH, dot_face_record, dots_hih


def test_an_earlier_exports_shape_model_and_engines_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    records = [dot_face_record(root, index, "train" if index < 2 else "test") for index in range(4)]
    manifest = write_manifest(records, tmp_path / "manifest.parquet")
    torch.manual_seed(0)
    config = {"name": "hih_dots", "model": {**DOTS_HIH, "num_points": 68}, "data": {"root": str(root)}}
    checkpoint = save_checkpoint(tmp_path / "model.pt", {"config": config, "model": dots_hih().state_dict()})
    run_id = mlflow.MlflowClient().create_run(ensure_experiment(experiment_name("synthetic"))).info.run_id
    trained = steps.TrainResult(
        run_id, str(checkpoint), "", "", "hih", "synthetic", "", str(manifest), str(root), 0.0, 0.0, config
    )
    out = tmp_path / "export"
    out.mkdir()
    points = np.zeros((68, 2))
    ShapeModel(points, np.zeros((136, 1)), np.ones(1), 32).save(out / SHAPE_MODEL_FILE)  # an LGCN exported here before
    for precision in ENGINE_PRECISIONS:
        (out / engine_file(precision)).write_bytes(b"an engine of that LGCN")

    exported = steps.export(trained, out)

    assert sorted(path.name for path in out.iterdir()) == ["model.onnx"]
    assert Predictor.load(exported.onnx_path).shape_model is None  # it had refused: a shape model but no heatmaps
