"""The learning-rate schedule: step decay at milestones, cosine to zero, linear warm-up, stepped per batch."""

from __future__ import annotations

import math

import pytest
import torch

from landmarkflow.config import TrainConfig, load_config
from landmarkflow.train.trainer import build_scheduler, lr_factor


def test_step_schedule_multiplies_by_gamma_at_each_milestone() -> None:
    train = TrainConfig(epochs=10, milestones=(4, 8), gamma=0.1)
    assert [lr_factor(p, train) for p in (0.0, 3.99, 4.0, 7.5, 8.0, 9.9)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )


def test_cosine_schedule_anneals_from_one_to_zero() -> None:
    train = TrainConfig(epochs=10, schedule="cosine")
    assert lr_factor(0.0, train) == pytest.approx(1.0)
    assert lr_factor(5.0, train) == pytest.approx(0.5)
    assert lr_factor(10.0, train) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(2.5, train) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_warmup_ramps_linearly_then_hands_over() -> None:
    train = TrainConfig(epochs=10, warmup_epochs=2, milestones=(6,))
    assert [lr_factor(p, train) for p in (0.0, 0.5, 1.0, 2.0, 6.0)] == pytest.approx([0.0, 0.25, 0.5, 1.0, 0.1])


def test_scheduler_moves_every_optimiser_step() -> None:
    config = load_config("configs/hih_synthetic_tiny.yaml", {"train.epochs": 2, "train.schedule": "cosine"})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=4)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)])


def test_unknown_schedule_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
