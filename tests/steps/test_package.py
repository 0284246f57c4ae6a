"""`landmarkflow.steps` resolves every step by name, and the registry-only steps never import torch."""

from __future__ import annotations

import pytest

from landmarkflow import steps
from tests.fresh_process import imported_after


@pytest.mark.parametrize("name", steps.__all__)
def test_every_name_comes_from_its_step_module(name: str) -> None:
    value = getattr(steps, name)
    assert value.__module__.startswith("landmarkflow.steps.")
    assert value.__name__ == name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        _ = steps.trian


def test_gate_register_and_promote_import_neither_torch_nor_matplotlib() -> None:
    """A fresh process, as a component is: the test session itself has long imported both."""
    code = "from landmarkflow import steps\nsteps.gate, steps.register, steps.promote, steps.TrainResult"
    assert imported_after(code, ["torch", "matplotlib"]) == []


def test_the_gate_reads_a_train_results_whole_config_without_torch() -> None:
    code = (
        "from landmarkflow.config import load_config\n"
        "from landmarkflow.steps.results import TrainResult\n"
        "config = load_config('configs/hih_synthetic_tiny.yaml')\n"
        "trained = TrainResult('run', 'model.pt', 'hih.yaml', config.config_hash(), 'hih', 'synthetic', 'abc',\n"
        "                      'manifest.parquet', 'data', 1.0, 0.05, config.to_dict())\n"
        "assert trained.experiment_config() == config\n"
    )
    assert imported_after(code, ["torch"]) == []
