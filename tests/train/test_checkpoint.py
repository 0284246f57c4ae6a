"""Checkpoints come from a shared store, so loading one must never run code from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from landmarkflow.train.checkpoint import CALIBRATED_VAL_NME, kept_val_nme, load_state, save_checkpoint


class _OpensAFile:
    """Unpickling this calls open(marker, "w"): any code a crafted file names would run the same way."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return open, (str(self.marker), "w")


def test_a_checkpoint_that_pickles_an_object_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 0, "history": _OpensAFile(marker)}, crafted)
    with pytest.raises(ValueError, match=r"last\.pt: refused to load.*pickled object \(io\.open\).*tensors and plain"):
        load_state(crafted)
    assert not marker.exists()


def test_weights_and_plain_values_round_trip(tmp_path: Path) -> None:
    state = {
        "model": {"w": torch.arange(3.0)},
        "rng": {"python": (3, (1, 2), None), "numpy": ["MT19937", [1, 2], 0, 0, 0.0]},
        "history": {"val_nme": [float("nan"), 0.5]},
        "optimizer": {"state": {0: {"step": torch.tensor(1.0)}}},
    }
    loaded = load_state(save_checkpoint(tmp_path / "ok.pt", state))
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["rng"] == state["rng"] and loaded["optimizer"]["state"][0]["step"] == 1.0


def test_saving_a_value_that_would_not_load_back_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"history\.val_nme\[1\] is a numpy\.float64"):
        save_checkpoint(tmp_path / "bad.pt", {"history": {"val_nme": [0.5, np.float64(0.4)]}})
    assert not (tmp_path / "bad.pt").exists()


@pytest.mark.parametrize(
    "state,expected",
    [
        ({"epoch": 2, "history": {"val_nme": [0.3, float("nan"), 0.2]}}, 0.2),  # the last epoch, kept
        ({"epoch": 0, "history": {"val_nme": [0.2, float("nan"), 0.3]}}, 0.2),  # `keep: best_val` kept the first
        ({"epoch": 1, "history": {"val_nme": [0.3, float("nan"), 0.2]}}, float("nan")),  # kept, not validated
        ({"epoch": 2, "history": {"val_nme": [0.3, 0.25, 0.2]}, CALIBRATED_VAL_NME: 0.18}, 0.18),
        ({"epoch": -1, "history": {"val_nme": []}}, float("nan")),  # nothing trained
    ],
)
def test_the_kept_validation_nme_is_that_of_the_weights_model_pt_holds(state: dict, expected: float) -> None:
    np.testing.assert_equal(kept_val_nme(state), expected)
