"""HIH model: paper parameter counts, output shapes, params validation, loss behaviour, overfitting, configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from landmarkflow.config import load_config
from landmarkflow.models.hih import HIH
from landmarkflow.models.params.hih import HIHParams
from landmarkflow.models.zoo import build_model, model_names
from tests.models.overfit import fit_batch
from tests.models.small_configs import SMALL_HIH, SMALL_HIH_SIZES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def collate(model: HIH, points: np.ndarray) -> dict[str, torch.Tensor]:
    encoded = [model.codec.encode(p, np.ones(len(p), bool)) for p in points]
    return {name: torch.from_numpy(np.stack([e[name] for e in encoded])) for name in encoded[0]}


@pytest.mark.parametrize(
    ("stacks", "ours_m", "paper_m"), [(1, 9.424388, 10.37), (2, 12.603494, 14.47), (4, 18.961706, 22.68)]
)
def test_parameter_counts_match_the_paper(stacks: int, ours_m: float, paper_m: float) -> None:
    """HIH_T/S/B at 98 points. The paper's counts (and the released code's) include an unused skip conv in every
    equal-width Res; we do not build it (DDP rejects parameters that get no gradient), so it is added back here."""
    model = build_model({"name": "hih", "num_points": 98, "stacks": stacks})
    ours = sum(p.numel() for p in model.parameters())
    assert ours / 1e6 == pytest.approx(ours_m, abs=1e-6)
    assert model.reference_param_count() / 1e6 == pytest.approx(paper_m, rel=0.01)


def test_registered_and_built_by_name() -> None:
    assert "hih" in model_names()
    model = build_model(SMALL_HIH)
    assert isinstance(model, HIH)
    assert (model.input_size, model.num_points, model.codec.heatmap_size) == (64, 5, 16)


def test_forward_shapes_and_predict() -> None:
    model = build_model({**SMALL_HIH, "stacks": 2}).eval()
    with torch.no_grad():
        outputs = model(torch.rand(3, 3, 64, 64))
        landmarks = model.predict(torch.rand(3, 3, 64, 64))
    assert outputs["int_heatmap"].shape == (3, 5, 16, 16)
    assert outputs["int_heatmap_stacks"].shape == (3, 2, 5, 16, 16)
    assert torch.equal(outputs["int_heatmap_stacks"][:, -1], outputs["int_heatmap"])
    assert outputs["dec_logits"].shape == (3, 5, 4, 4)
    assert landmarks.shape == (3, 5, 2) and landmarks.dtype == torch.float32
    assert bool(((landmarks >= -0.5) & (landmarks <= 63.5)).all())


def test_paper_geometry_decimal_head_reaches_8x8() -> None:
    model = build_model({"name": "hih", "num_points": 3, "stacks": 1, "channels": 32, "decimal_channels": 16}).eval()
    with torch.no_grad():
        outputs = model(torch.rand(1, 3, 256, 256))
    assert outputs["int_heatmap"].shape == (1, 3, 64, 64)
    assert outputs["dec_logits"].shape == (1, 3, 8, 8)


def test_init_follows_the_paper() -> None:
    model = build_model(SMALL_HIH)
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert float(torch.cat([w.flatten() for w in convs]).std()) == pytest.approx(0.001, rel=0.05)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in norms)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"heatmap_size": 32}, "input_size / 4"),
        ({"decimal_size": 8}, "power of two >= 4"),
        ({"decimal_size": 3}, "power of two >= 4"),
        ({"hourglass_depth": 5}, "divisible by 2\\*\\*hourglass_depth"),
        ({"dec_sigma": 2.0}, "too wide"),
        ({"channels": 30}, "multiple of 4"),
        ({"layers": 3}, "Extra inputs"),
        ({"subpixel": "argmax"}, "'decimal' or 'fit'"),
        ({"subpixel": "fit", "int_sigma": 1.0}, "needs int_sigma >= 1.2"),
    ],
)
def test_params_reject_inconsistent_sizes(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HIHParams.model_validate({**SMALL_HIH_SIZES, **change})


def test_loss_parts_and_point_weights() -> None:
    torch.manual_seed(0)
    model = build_model(SMALL_HIH)
    rng = np.random.default_rng(0)
    targets = collate(model, rng.uniform(0, 63, size=(2, 5, 2)))
    outputs = model(torch.rand(2, 3, 64, 64))
    total, parts = model.loss(outputs, targets)
    assert set(parts) == {"int_mse", "dec_kl"} and all(isinstance(v, float) for v in parts.values())
    assert float(total) == pytest.approx(parts["int_mse"] + 0.05 * parts["dec_kl"], rel=1e-5)
    # A point with weight 0 (outside the crop) contributes nothing, whatever its target says.
    spoiled = {**targets, "int_heatmap": targets["int_heatmap"].clone(), "dec_heatmap": targets["dec_heatmap"].clone()}
    spoiled["weight"][:, 0] = 0
    spoiled["int_heatmap"][:, 0] = 5.0
    spoiled["dec_heatmap"][:, 0] = torch.randn(2, 4, 4)
    masked = {**targets, "weight": spoiled["weight"]}
    assert float(model.loss(outputs, spoiled)[0]) == pytest.approx(float(model.loss(outputs, masked)[0]), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("subpixel", ["decimal", "fit"])
def test_overfits_a_tiny_batch(subpixel: str) -> None:
    """60 Adam steps on 4 samples: the loss falls by far more than 5x and decoded points land on the targets,
    whether the sub-cell position is read from the decimal map or fitted to the integer map."""
    torch.manual_seed(0)
    model = build_model({**SMALL_HIH, "subpixel": subpixel})
    rng = np.random.default_rng(0)
    points = rng.uniform(4, 59, size=(4, 5, 2))
    images, targets = torch.rand(4, 3, 64, 64), collate(model, points)
    losses = [step["loss"] for step in fit_batch(model, images, targets, steps=60, lr=3e-3)]
    assert losses[-1] < losses[0] / 5
    # Still in train mode (batch statistics): running BN statistics lag 60 steps of fast-moving weights.
    with torch.no_grad():
        decoded = model.predict(images).numpy()
    error = np.linalg.norm(decoded - points, axis=-1).mean() / model.input_size
    assert error < 0.01


@pytest.mark.parametrize("name", ["hih_300w.yaml", "hih_synthetic_tiny.yaml"])
def test_configs_validate_and_build(name: str) -> None:
    config = load_config(CONFIGS / name)
    assert isinstance(config.model, HIHParams) and config.model.num_points == 68
    codec = config.model.make_codec()
    assert codec.input_size == config.model.input_size


def test_paper_config_is_hih_b() -> None:
    config = load_config(CONFIGS / "hih_300w.yaml")
    model = config.model
    assert (model.stacks, model.channels, model.input_size, model.heatmap_size, model.decimal_size) == (
        4,
        256,
        256,
        64,
        8,
    )
    assert (config.train.lr, config.train.epochs, config.train.milestones, config.train.batch_size) == (
        1e-4,
        60,
        (30, 50),
        16,
    )
    assert (config.data.dataset, config.data.box_scale) == ("300w", 1.2)
