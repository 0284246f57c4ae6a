"""A deployed LGCN gives its shape-fitted landmarks: export saves the shape model evaluate fitted, register logs it
with the ONNX, and the Predictor of `predict` and `serve` applies it to the graph's heatmaps."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import torch

from landmarkflow.data.manifest import read_split
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records
from landmarkflow.imageio import read_rgb
from landmarkflow.inference import Predictor
from landmarkflow.layouts import get_layout
from landmarkflow.models.lgcn_shape import ShapeModel, fit_shapes
from landmarkflow.runtime import SHAPE_MODEL_FILE
from landmarkflow.train.checkpoint import load_model
from tests.serving.champions import train_champion

pytestmark = pytest.mark.slow


def arrays(shape_model: ShapeModel) -> list[np.ndarray]:
    """Every array a shape model holds, its calibration's included."""
    return [np.asarray(value) for value in astuple(shape_model) if not isinstance(value, tuple)] + [
        *astuple(shape_model.correction)
    ]


def test_predict_applies_the_shape_fit_evaluate_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    champion = train_champion(tmp_path, "configs/lgcn_synthetic_tiny.yaml")
    for key, value in champion.env.items():
        monkeypatch.setenv(key, value)
    run = champion.workflow
    bundle = Path(run.export.onnx_path).parent
    assert (bundle / SHAPE_MODEL_FILE).is_file()

    predictor = Predictor.load(champion.uri)
    assert predictor.shape_model is not None and "shape fit" in predictor.backend
    assert predictor.info.heatmap_name == "heatmaps"
    model, config = load_model(Path(run.train.checkpoint))
    test = read_split(run.train.manifest, config.data.test_split)
    train = read_split(run.train.manifest, "train")
    crops = (Path(run.train.root), predictor.info.crop_spec, 64)
    layout = get_layout(config.data.layout)

    deployed = predict_records(predictor.predict_crops, test, *crops)
    evaluated_shape = model.shape_model(
        np.stack([r.landmarks for r in train]), np.stack([r.bbox for r in train]), config.data.box_scale
    )
    assert evaluated_shape.correction is not None  # the config's shape calibration, corrects the shape fit
    for saved, fitted in zip(arrays(predictor.shape_model), arrays(evaluated_shape), strict=True):
        np.testing.assert_array_equal(saved, fitted)
    # evaluate fits the same shape model to PyTorch's heatmaps (the flip test's average); onnxruntime's agree to
    # float rounding. A one-epoch LGCN's maps are nearly flat, so that rounding may move its argmax peaks: compare on
    # the same maps instead.
    root = Path(run.train.root)
    batch = np.concatenate([predictor.crop_faces(read_rgb(root / r.image_path), [r.bbox]).crops for r in test[:4]])
    ort_maps = predictor.session.run(["heatmaps"], {"images": batch})[0]
    with torch.inference_mode():
        torch_maps = model.eval().predict_with_heatmaps(torch.from_numpy(batch))[1].numpy()
    np.testing.assert_allclose(ort_maps, torch_maps, atol=1e-6)
    np.testing.assert_array_equal(predictor.predict_crops(batch), fit_shapes(ort_maps, evaluated_shape))
    unfitted = predict_records(lambda c: predictor.predict_crops(c, fit_shape=False), test, *crops)
    assert mean_nme(unfitted, test, layout, config.data.normaliser) == pytest.approx(run.export.onnx_nme, abs=1e-6)

    lone = Predictor.load(bundle)  # the export folder: the shape model beside the .onnx
    np.testing.assert_allclose(predict_records(lone.predict_crops, test[:2], *crops), deployed[:2], atol=1e-9)
