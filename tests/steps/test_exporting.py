"""The export step in a reused folder: what an earlier export left beside its ONNX (an LGCN's shape model, a TensorRT
engine) is not this model's, and predict and register would take it as this model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from landmarkflow import steps
from landmarkflow.inference import Predictor
from landmarkflow.models.lgcn_shape import ShapeModel
from landmarkflow.runtime import ENGINE_PRECISIONS, SHAPE_MODEL_FILE, engine_file
from tests.fakes import DOTS_HIH, untrained


@pytest.mark.slow
def test_an_earlier_exports_shape_model_and_engines_are_removed(tmp_path: Path) -> None:
    trained = untrained(tmp_path, "hih_dots", {**DOTS_HIH, "num_points": 68}, train_faces=2)
    out = tmp_path / "export"
    out.mkdir()
    points = np.zeros((68, 2))
    ShapeModel(points, np.zeros((136, 1)), np.ones(1), 32).save(out / SHAPE_MODEL_FILE)  # an LGCN exported here before
    for precision in ENGINE_PRECISIONS:
        (out / engine_file(precision)).write_bytes(b"an engine of that LGCN")

    exported = steps.export(trained, out)

    assert sorted(path.name for path in out.iterdir()) == ["model.onnx"]
    assert Predictor.load(exported.onnx_path).shape_model is None  # it had refused: a shape model but no heatmaps
