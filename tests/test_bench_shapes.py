"""bench/bench_shapes.py's measures: how far a shape lies outside the train shapes' modes, and the split of an
answer's error into a similarity of the whole shape, the modes and the rest."""

from __future__ import annotations

import numpy as np

from bench.bench_shapes import ShapeSpace
from landmarkflow.data.synthetic.face3d import TEMPLATE_68

RNG = np.random.default_rng(0)
DIRECTIONS = RNG.normal(0.0, 0.01, size=(3, 68, 2))
"""Three ways the shapes of this test's "renderer" vary: small, so that aligning them is near enough linear."""


def moved(shape: np.ndarray, scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return scale * shape @ rotation.T + np.array(shift)


def drawn(count: int, rng: np.random.Generator, bend: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Shapes of the template bent along DIRECTIONS (and by `bend` more), each placed, sized and rolled at random."""
    shapes = TEMPLATE_68[:, :2] + np.einsum("nd,dkc->nkc", rng.normal(size=(count, 3)) + bend, DIRECTIONS)
    return np.stack(
        [moved(s, rng.uniform(50, 80), rng.uniform(-20, 20), tuple(rng.uniform(40, 60, size=2))) for s in shapes]
    )


SPACE = ShapeSpace(drawn(200, RNG))


def test_a_shape_the_renderer_draws_lies_in_its_modes_and_one_it_cannot_lies_outside() -> None:
    new = drawn(5, np.random.default_rng(1))
    inside = SPACE.off_space(new, 3)
    assert inside.max() < 3e-3, inside
    bent = new.copy()
    bent[:, 8, 1] += 0.2 * 60  # the chin 0.2 face half-widths lower (about a fifth of an eye distance)
    outside = SPACE.off_space(bent, 3)
    assert (outside > 0.01).all(), outside


def test_an_answer_moved_as_a_whole_is_all_similarity_error() -> None:
    truths = drawn(5, np.random.default_rng(2))
    answers = np.stack([moved(t - t.mean(0), 1.02, 1.0, tuple(t.mean(0) + 1.5)) for t in truths])
    shares = SPACE.error_shares(truths, answers, 3)
    assert shares["similarity"] > 0.99 and abs(sum(shares.values()) - 1.0) < 1e-9, shares


def test_an_answer_bent_along_a_mode_holds_its_error_there_and_noise_holds_it_in_the_rest() -> None:
    truths = drawn(5, np.random.default_rng(3))
    bent = SPACE.error_shares(truths, drawn(5, np.random.default_rng(3), bend=(1.0, 0.0, 0.0)), 3)
    noisy = SPACE.error_shares(truths, truths + np.random.default_rng(4).normal(0.0, 1.0, truths.shape), 3)
    assert bent["modes_1_3"] > 0.9, bent
    assert noisy["rest"] > 0.8, noisy
