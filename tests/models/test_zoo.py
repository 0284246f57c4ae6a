"""The model table: every entry names a buildable model, and building one imports that model's module alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from landmarkflow.export.onnx import compare_outputs, export_onnx
from landmarkflow.layouts import get_layout
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.zoo import MODELS, build_model, get_entry, parse_params
from landmarkflow.runtime import DeployInfo
from tests.fresh_process import imported_after
from tests.models.small_configs import SMALL_HIH


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_entry_names_a_model_class_in_its_module(name: str) -> None:
    entry = MODELS[name]
    model_class = entry.model_class()
    assert issubclass(model_class, LandmarkModel)
    assert model_class.__module__ == entry.module
    assert entry.params.__module__ == f"landmarkflow.models.params.{name}"


def test_an_unknown_name_lists_the_known_models() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet': expected one of dsat, hih, lgcn, rdfn"):
        get_entry("resnet")
    with pytest.raises(ValueError, match="model section needs a 'name'"):
        parse_params({"stacks": 1})


def test_a_raw_section_builds_its_model() -> None:
    section = {"name": "lgcn", "filters": 4, "local_5x5_layers": 1, "local_3x3_layers": 0, "global_layers": 1}
    model = build_model({**section, "input_size": 32, "kernel_size": 9})
    assert type(model).__name__ == "LGCN" and model.input_size == 32


def test_building_hih_imports_neither_scipy_nor_evaluation_nor_other_models() -> None:
    """A fresh process: the test session itself has long imported all of them."""
    code = (
        "from landmarkflow.config import load_config\n"
        "from landmarkflow.models.zoo import build_model\n"
        "build_model(load_config('configs/hih_synthetic_tiny.yaml').model)\n"
    )
    others = ["landmarkflow.models.lgcn", "landmarkflow.models.dsat", "landmarkflow.models.rdfn"]
    assert imported_after(code, ["scipy", "landmarkflow.evaluation", *others]) == []


FLIP_SECTIONS = {
    "hih": {**SMALL_HIH, "num_points": 19},
    "lgcn": {"name": "lgcn", "num_points": 19, "input_size": 32, "kernel_size": 9, "filters": 4,
             "local_5x5_layers": 1, "local_3x3_layers": 0, "global_layers": 1},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FLIP_SECTIONS))
def test_flip_test_mirrors_predictions_exactly_and_exports(name: str, tmp_path: Path) -> None:
    """predict(mirror(x)) == mirror(predict(x)) for any weights: the crop's and its mirror's landmarks, the latter
    mirrored back with the layout's pairs, are averaged; the exported graph does the same."""
    torch.manual_seed(0)
    model = build_model({**FLIP_SECTIONS[name], "flip_test": True}).eval()
    size = model.input_size
    images = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        direct, mirrored = model.predict(images).numpy(), model.predict(images.flip(-1)).numpy()
        plain = model.codec.decode(model(images)).numpy()
    np.testing.assert_allclose(get_layout("19").flip_points(mirrored, size), direct, atol=1e-4)
    assert np.abs(plain - direct).max() > 1e-3  # the mirror's view is in the average
    info = DeployInfo(model=name, layout="19", num_points=19, input_size=size, box_scale=1.25, config_hash="0")
    path = export_onnx(model, tmp_path / f"{name}.onnx", info)
    assert compare_outputs(model, path, images.numpy())["max_abs_diff_px"] < 1e-3


def test_flip_test_heatmaps_mirror_exactly_and_export(tmp_path: Path) -> None:
    """The maps LGCN's shape fit reads are the flip test's too: a mirror crop's maps are the crop's, mirrored (W
    flipped, pairs swapped), for any weights; the exported graph outputs those same maps beside the landmarks."""
    torch.manual_seed(0)
    model = build_model({**FLIP_SECTIONS["lgcn"], "flip_test": True}).eval()
    size = model.input_size
    images = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        points, maps = model.predict_with_heatmaps(images)
        mirrored = model.predict_with_heatmaps(images.flip(-1))[1]
        single = model(images)["heatmap"]
        torch.testing.assert_close(points, model.predict(images))
    scale = float(maps.abs().max())  # the source's init keeps this small net's maps near 1e-6
    pairs = list(get_layout("19").flip_permutation)
    np.testing.assert_allclose(mirrored.flip(-1)[:, pairs].numpy(), maps.numpy(), rtol=0, atol=1e-5 * scale)
    assert (single - maps).abs().max() > 1e-2 * scale  # the mirror's view is in the average
    info = DeployInfo(
        model="lgcn", layout="19", num_points=19, input_size=size, box_scale=1.25, config_hash="0", heatmap_name="maps"
    )
    path = export_onnx(model, tmp_path / "lgcn.onnx", info)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run(["maps"], {info.input_name: images.numpy()})[0]
    np.testing.assert_allclose(exported, maps.numpy(), rtol=0, atol=1e-4 * scale)


def test_flip_test_needs_a_layouts_point_count() -> None:
    with pytest.raises(ValueError, match="flip_test needs a layout's left/right point pairs, but num_points 5"):
        parse_params({**SMALL_HIH, "flip_test": True})
