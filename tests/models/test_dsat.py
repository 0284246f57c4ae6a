"""DSAT: paper size, shapes per layout, codec round trip, boundaries, DSA gate, flip test, overfit, ONNX, configs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from landmarkflow.codecs.dsat import BOUNDARY_FLOOR, DSATCodec
from landmarkflow.codecs.heatmap import fit_log_gaussian, gaussian_maps
from landmarkflow.config import load_config
from landmarkflow.export.onnx import compare_outputs, export_onnx
from landmarkflow.layouts import LAYOUTS, get_layout
from landmarkflow.models.dsat import DSAT, SemanticGate, semantic_hash
from landmarkflow.models.measure import forward_gflops
from landmarkflow.models.params.dsat import DSATParams
from landmarkflow.models.zoo import build_model, model_names
from landmarkflow.runtime import DeployInfo
from tests.models.overfit import fit_batch

CONTRACT_PX = 0.05
SMALL_NET = {
    "name": "dsat",
    "input_size": 64,
    "heatmap_size": 16,
    "stem_stride": 2,
    "hourglasses": 1,
    "channels": 32,
    "hourglass_depth": 2,
    "head_channels": 16,
    "transformer_layers": 1,
    "transformer_heads": 2,
    "sigma": 1.0,
    "boundary_sigma": 1.0,
}
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DSAT_CONFIGS = sorted(CONFIGS.glob("dsat_*.yaml"))


def collate(model: DSAT, points: np.ndarray) -> dict[str, torch.Tensor]:
    encoded = [model.codec.encode(p, np.ones(len(p), bool)) for p in points]
    return {name: torch.from_numpy(np.stack([e[name] for e in encoded])) for name in encoded[0]}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_network_size() -> None:
    """181.2 M parameters and 22.15 GMAC at 128^2 (docs/models.md §2.1), counted on the meta device (no memory)."""
    with torch.device("meta"):
        model = build_model({"name": "dsat"})
    assert count(model) / 1e6 == pytest.approx(181.2, rel=0.02)
    assert count(model) / 1e6 == pytest.approx(181.179136, abs=1e-6)
    hourglass = model.hourglasses[0]
    assert count(hourglass) / 1e6 == pytest.approx(45.11, abs=0.01)
    assert count(hourglass.transformer) / 1e6 == pytest.approx(41.28, abs=0.01)
    assert forward_gflops(model) / 2 == pytest.approx(22.15, abs=0.01)


def test_registered_and_built_by_name() -> None:
    assert "dsat" in model_names()
    model = build_model(SMALL_NET)
    assert isinstance(model, DSAT)
    codec = model.codec
    assert (model.input_size, model.num_points, codec.heatmap_size, codec.num_boundaries) == (64, 68, 16, 13)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_shapes_for_every_layout(layout: str) -> None:
    model = build_model({**SMALL_NET, "layout": layout}).eval()
    points, boundaries = LAYOUTS[layout].num_points, len(LAYOUTS[layout].boundaries)
    with torch.no_grad():
        outputs = model(torch.rand(2, 3, 64, 64))
        landmarks = model.predict(torch.rand(3, 3, 64, 64))
    assert outputs["heatmap"].shape == (2, points, 16, 16)
    assert outputs["boundary"].shape == (2, boundaries, 16, 16)
    assert landmarks.shape == (3, points, 2) and landmarks.dtype == torch.float32
    assert bool(((landmarks >= -0.5) & (landmarks <= 63.5)).all())


def test_head_upsamples_to_twice_the_hourglass_side() -> None:
    model = build_model({**SMALL_NET, "heatmap_size": 32}).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64))["heatmap"].shape == (1, 68, 32, 32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"heatmap_size": 64}, "hourglass side 16 or twice it 32"),
        ({"input_size": 72}, "divisible by 2 \\* stem_stride"),
        ({"hourglass_depth": 5}, "divisible by 2 \\* stem_stride"),
        ({"channels": 30}, "multiple of 4"),
        ({"layout": "98", "num_points": 68}, "layout 98 has 98 points"),
        ({"layout": "21"}, "layout"),
        ({"stem_stride": 4}, "stem_stride"),
        ({"gates": 3}, "Extra inputs"),
    ],
)
def test_params_reject_inconsistent_settings(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DSATParams.model_validate({**SMALL_NET, **change})


def test_num_points_follows_the_layout() -> None:
    assert DSATParams.model_validate({"name": "dsat", "layout": "29"}).num_points == 29


def hard_points(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform points in the crop plus its corners and edges."""
    border = np.array([[-0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5], [0.0, size - 1.0], [size / 2, -0.5]])
    return np.concatenate([border, rng.uniform(-0.5, size - 0.5, size=(count - len(border), 2))])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(("size", "heatmap", "sigma"), [(128, 128, 3.0), (96, 24, 1.5), (64, 32, 1.0)])
def test_codec_round_trip_within_contract(layout: str, size: int, heatmap: int, sigma: float) -> None:
    codec = DSATCodec(get_layout(layout), size, heatmap, sigma, sigma)
    rng = np.random.default_rng(int(layout))
    batch = [hard_points(size, codec.num_points, rng) for _ in range(3)]
    encoded = [codec.encode(points, np.ones(codec.num_points, bool)) for points in batch]
    decoded = codec.decode({"heatmap": torch.from_numpy(np.stack([e["heatmap"] for e in encoded]))}).numpy()
    assert np.abs(decoded - np.stack(batch)).max() < CONTRACT_PX


def test_encode_shapes_dtypes_and_weights() -> None:
    codec = DSATCodec(get_layout("19"), 128, 128, 3.0, 3.0)
    points = np.random.default_rng(0).uniform(20, 100, size=(19, 2))
    points[0] = [300.0, 5.0]
    points[18] = np.nan
    targets = codec.encode(points, np.ones(19, bool))
    assert targets["heatmap"].shape == (19, 128, 128) and targets["boundary"].shape == (6, 128, 128)
    assert all(value.dtype == np.float32 for value in targets.values())
    assert targets["weight"][0] == 0 and targets["weight"][18] == 0 and targets["weight"][1:18].all()
    np.testing.assert_array_equal(targets["boundary_weight"], np.ones(6))
    points[4] = np.nan  # a point of the second boundary, the left brow (3-5)
    targets = codec.encode(points, np.ones(19, bool))
    np.testing.assert_array_equal(targets["boundary_weight"], [1, 0, 1, 1, 1, 1])
    assert (targets["boundary"][1] == np.float32(BOUNDARY_FLOOR)).all()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_boundary_maps_follow_their_point_chains(layout: str) -> None:
    """Each boundary map is 1 on every point of its chain and on the middle of every segment, and floor away."""
    spec = get_layout(layout)
    codec = DSATCodec(spec, 128, 128, 3.0, 3.0)
    points = np.round(np.random.default_rng(3).uniform(10, 117, size=(spec.num_points, 2)))
    boundary = codec.encode(points, np.ones(spec.num_points, bool))["boundary"]
    assert len(boundary) == len(spec.boundaries) > 0
    for line, chain in zip(boundary, spec.boundaries.values(), strict=True):
        on_line = points[list(chain)]
        middles = np.round((on_line[:-1] + on_line[1:]) / 2)
        for x, y in np.concatenate([on_line, middles]).astype(int):
            assert line[y, x] > 0.9
        low, high = on_line.min(axis=0) - 7, on_line.max(axis=0) + 7  # the segments' box grown past 2 sigma
        xs, ys = np.meshgrid(np.arange(128), np.arange(128))
        far = (xs < low[0]) | (xs > high[0]) | (ys < low[1]) | (ys > high[1])
        assert (line[far] == np.float32(BOUNDARY_FLOOR)).all()
        assert line.max() == pytest.approx(1.0)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_boundaries_mirror_onto_boundaries(layout: str) -> None:
    """The flip permutation maps every boundary line onto a boundary line: the same segments, in whatever order
    or direction (a closed brow loop of WFLW starts at its outer end on one side and its inner end on the other)."""
    spec = get_layout(layout)

    def segments(chain: tuple[int, ...]) -> frozenset[frozenset[int]]:
        return frozenset(frozenset(pair) for pair in itertools.pairwise(chain))

    lines = {segments(chain) for chain in spec.boundaries.values()}
    for chain in spec.boundaries.values():
        assert segments(tuple(spec.flip_permutation[i] for i in chain)) in lines


@pytest.mark.parametrize("centre", [(-0.5, 3.0), (0.2, 9.7), (15.5, 15.5), (7.25, 0.0)])
def test_fit_is_exact_for_gaussians_and_survives_flat_maps(centre: tuple[float, float]) -> None:
    maps = torch.from_numpy(gaussian_maps(np.array([centre]), 16, 1.5))[None]
    np.testing.assert_allclose(fit_log_gaussian(maps)[0, 0].numpy(), centre, atol=1e-3)
    flat = fit_log_gaussian(torch.zeros(1, 1, 16, 16))
    assert torch.isfinite(flat).all() and flat.tolist() == [[[0.0, 0.0]]]


def test_gate_is_binary_and_deterministic_in_eval() -> None:
    gate = SemanticGate().eval()
    x = torch.randn(4, 16, 8, 8)
    mask = gate.mask(x)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(mask, (x.mean(dim=(2, 3)) > 0).float())
    assert torch.equal(gate(x), x * (1 + mask)[:, :, None, None])


def test_hard_gate_is_binary_forward_with_a_soft_gradient() -> None:
    scores = torch.linspace(-3, 3, 13, requires_grad=True)
    hard = semantic_hash(scores, hard=True)
    assert set(hard.detach().unique().tolist()) == {0.0, 1.0}
    hard.sum().backward()
    soft_grad = scores.grad.clone()
    assert (soft_grad[4:9] > 0).all()  # the unsaturated middle of the saturating sigmoid
    scores.grad = None
    soft = semantic_hash(scores, hard=False)
    assert ((soft > 0) & (soft < 1)).any() and bool(((soft >= 0) & (soft <= 1)).all())
    soft.sum().backward()
    torch.testing.assert_close(scores.grad, soft_grad)


def test_gate_passes_gradients_to_its_input_in_train() -> None:
    """Through the gate as well as the identity path: d/dX0 of sum(X0 * (1 + g(X0))) differs from (1 + g)."""
    torch.manual_seed(0)
    gate = SemanticGate().train()
    x = (0.3 * torch.randn(2, 8, 4, 4)).requires_grad_()
    for _ in range(4):  # both coins
        x.grad = None
        gate(x).sum().backward()
        assert torch.isfinite(x.grad).all()
        assert not torch.allclose(x.grad, x.grad.round())


def test_loss_is_the_mse_over_all_maps_and_respects_weights() -> None:
    torch.manual_seed(0)
    model = build_model({**SMALL_NET, "layout": "19"})
    targets = collate(model, np.random.default_rng(0).uniform(5, 58, size=(2, 19, 2)))
    outputs = model(torch.rand(2, 3, 64, 64))
    total, parts = model.loss(outputs, targets)
    assert set(parts) == {"landmark_mse", "boundary_mse"}
    maps = torch.cat([outputs["heatmap"], outputs["boundary"]], dim=1)
    expected = torch.nn.functional.mse_loss(maps, torch.cat([targets["heatmap"], targets["boundary"]], dim=1))
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    spoiled = {**targets, "heatmap": targets["heatmap"].clone(), "weight": targets["weight"].clone()}
    spoiled["weight"][:, 0] = 0
    spoiled["heatmap"][:, 0] = 5.0
    masked = {**targets, "weight": spoiled["weight"]}
    assert float(model.loss(outputs, spoiled)[0]) == pytest.approx(float(model.loss(outputs, masked)[0]), rel=1e-6)


@pytest.fixture(scope="module")
def overfitted() -> tuple[DSAT, torch.Tensor, np.ndarray, list[float]]:
    """A small 19-point DSAT after 120 Adam steps on 4 samples, and its loss curve."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is as fast, and far faster on a busy machine
    model = build_model({**SMALL_NET, "layout": "19", "transformer_dropout": 0.0})
    points = np.random.default_rng(0).uniform(6, 57, size=(4, 19, 2))
    images, targets = torch.rand(4, 3, 64, 64), collate(model, points)
    losses = [step["loss"] for step in fit_batch(model, images, targets, steps=120, lr=5e-3)]
    torch.set_num_threads(threads)
    return model, images, points, losses


def test_overfits_a_tiny_batch(overfitted: tuple[DSAT, torch.Tensor, np.ndarray, list[float]]) -> None:
    """The loss falls by far more than 5x and the decoded maps land within 2 px (of 64) of the targets.

    Decoded without the flip test: the net never saw the mirrored images, so averaging them in would measure
    nothing about fitting. Train mode: the batch statistics of these 4 samples are what the net fitted.
    """
    model, images, points, losses = overfitted
    assert losses[-1] < losses[0] / 5
    with torch.no_grad():
        decoded = model.codec.decode(model(images)).numpy()
    assert np.linalg.norm(decoded - points, axis=-1).mean() < 2.0


def test_flip_test_makes_predictions_mirror_exactly(
    overfitted: tuple[DSAT, torch.Tensor, np.ndarray, list[float]],
) -> None:
    """predict(mirror(x)) == mirror(predict(x)): the flip test averages both views with the layout's pairs.

    The overfitted net gives peaked maps (a random one has near-ties whose argmax a mirror can move).
    """
    model, images = overfitted[0].eval(), overfitted[1]
    with torch.no_grad():
        direct, mirrored = model.predict(images).numpy(), model.predict(images.flip(-1)).numpy()
    model.train()
    np.testing.assert_allclose(get_layout("19").flip_points(mirrored, 64), direct, atol=1e-3)


@pytest.mark.slow
def test_onnx_export_matches_predict(
    overfitted: tuple[DSAT, torch.Tensor, np.ndarray, list[float]], tmp_path: Path
) -> None:
    """The flip test, pair swap and least-squares fit all run inside the exported graph."""
    model = overfitted[0]
    info = DeployInfo(model="dsat", layout="19", num_points=19, input_size=64, box_scale=1.25, config_hash="0")
    path = export_onnx(model, tmp_path / "dsat.onnx", info)
    diffs = compare_outputs(model, path, overfitted[1].numpy())
    assert diffs["max_abs_diff_px"] < 1e-3


@pytest.mark.parametrize("path", DSAT_CONFIGS, ids=[p.stem for p in DSAT_CONFIGS])
def test_configs_validate_and_agree_with_their_layout(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config.model, DSATParams) and config.model.layout == config.data.layout
    assert config.model.make_codec().input_size == config.model.input_size


def test_paper_configs_are_the_released_network() -> None:
    for name in ("300w", "wflw", "cofw", "aflw"):
        config = load_config(CONFIGS / f"dsat_{name}.yaml")
        model = config.model
        assert (model.hourglasses, model.channels, model.input_size, model.heatmap_size, model.sigma) == (
            4,
            256,
            128,
            128,
            3.0,
        )
        assert (config.train.optimizer, config.train.lr, config.train.batch_size, config.train.gamma) == (
            "adam",
            2.5e-4,
            5,
            0.5,
        )


def test_tiny_config_is_cheap() -> None:
    model = build_model(load_config(CONFIGS / "dsat_synthetic_tiny.yaml").model)
    assert forward_gflops(model) <= 0.10
