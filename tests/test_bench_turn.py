"""bench/bench_turn.py's measure: how much of each face's turn (the drift profile's yaw proxy) a model reads."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_turn import turn_bands
from landmarkflow.data.validation.drift import head_pose


def faces_turned(turns: np.ndarray) -> np.ndarray:
    """68-point faces whose eyes sit 2 apart on the x axis and whose nose is moved by 2 x turn along it."""
    points = np.zeros((len(turns), 68, 2))
    points[:, 36:42, 0], points[:, 42:48, 0] = -1.0, 1.0
    points[:, 27:36, 0] = 2.0 * turns[:, None]
    return points


def test_a_model_reading_half_of_every_turn_reads_half_in_every_band() -> None:
    turns = np.array([0.05, -0.15, 0.25, 0.35, -0.6, 0.8])
    true_turn, half_turn = head_pose(faces_turned(turns), "68")[0], head_pose(faces_turned(turns / 2), "68")[0]
    assert np.allclose(true_turn, turns)
    bands = turn_bands(true_turn, half_turn, nme=np.arange(6.0))
    assert [band["faces"] for band in bands] == [1, 1, 1, 1, 2]
    assert [band["turn_read"] for band in bands] == pytest.approx([0.5] * 5)
    assert [band["nme"] for band in bands] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.5])
    assert bands[-1]["band"] == "[0.45, inf)"


def test_a_band_without_faces_has_no_numbers_rather_than_zeros() -> None:
    turns = np.array([0.02, 0.5])
    bands = turn_bands(turns, turns, nme=np.array([0.03, 0.09]), edges=(0.0, 0.1, 0.3))
    assert [band["faces"] for band in bands] == [1, 0, 1]
    assert np.isnan(bands[1]["nme"]) and np.isnan(bands[1]["turn_read"])
    assert bands[2]["turn_read"] == pytest.approx(1.0)
