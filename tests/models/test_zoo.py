"""The model table: every entry names a buildable model, and building one imports that model's module alone."""

from __future__ import annotations

import pytest

from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.zoo import MODELS, build_model, get_entry, parse_params
from tests.fresh_process import imported_after


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
