"""`landmarkflow.steps` resolves every step by name, and the registry-only steps never import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from landmarkflow import steps

ROOT = Path(__file__).resolve().parents[2]


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
    code = (
        "import sys\n"
        "from landmarkflow import steps\n"
        "steps.gate, steps.register, steps.promote, steps.TrainResult\n"
        "print(sorted({'torch', 'matplotlib'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_gate_reads_a_train_results_whole_config_without_torch() -> None:
    code = (
        "import sys\n"
        "from landmarkflow.config import load_config\n"
        "from landmarkflow.steps.results import TrainResult\n"
        "config = load_config('configs/hih_synthetic_tiny.yaml')\n"
        "trained = TrainResult('run', 'model.pt', 'hih.yaml', config.config_hash(), 'hih', 'synthetic', 'abc',\n"
        "                      'manifest.parquet', 'data', 1.0, 0.05, config.to_dict())\n"
        "assert trained.experiment_config() == config\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
