"""bench/bench_tilt.py's roll: the landmarks move with the pixels they sit on, counter-clockwise on screen."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_tilt import rolled


@pytest.mark.parametrize("degrees", [15.0, -30.0, 90.0])
def test_a_rolled_landmark_stays_on_its_pixel(degrees: float) -> None:
    image = np.zeros((200, 240, 3), np.uint8)
    image[68:73, 138:143] = 255  # a 5x5 dot centred on (140, 70)
    points = np.array([[140.0, 70.0], [60.0, 70.0], [100.0, 150.0]])
    turned, moved = rolled(image, points, degrees)
    ys, xs = np.nonzero(turned[..., 0] > 127)
    assert turned.shape == image.shape
    assert np.hypot(xs.mean() - moved[0, 0], ys.mean() - moved[0, 1]) < 0.5
    assert np.allclose(moved.mean(axis=0), points.mean(axis=0))  # turned about the landmarks' centre


def test_a_positive_roll_turns_counter_clockwise_on_screen() -> None:
    points = np.array([[150.0, 100.0], [50.0, 100.0]])  # a point right of the centre, one left of it
    _, moved = rolled(np.zeros((200, 200, 3), np.uint8), points, 30.0)
    assert moved[0, 1] < 100.0 < moved[1, 1]  # on screen (y down) the right one rises
    assert np.allclose(np.hypot(*(moved[0] - moved[1])), 100.0)
