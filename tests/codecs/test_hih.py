"""HIH codec: target shapes, the 0.05 px round-trip contract (decimal and fitted sub-cell positions), peak
placement, weights and decode key handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landmarkflow.codecs.heatmap import fit_log_gaussian, gaussian_maps, heatmap_cells, refine_log_gaussian
from landmarkflow.codecs.hih import HIHCodec
from landmarkflow.models.params.hih import MIN_FIT_SIGMA

CONTRACT_PX = 0.05
# (input, heatmap, decimal, decimal sigma): the paper's geometry, a 128 px one, a 4-wide decimal map, and the small
# synthetic config's.
GEOMETRIES = [(256, 64, 8, 1.0), (128, 32, 8, 1.0), (128, 32, 4, 0.6), (96, 24, 6, 1.0)]


def batched(targets: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(value)[None] for name, value in targets.items()}


def hard_points(size: int, heatmap: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """Uniform points plus points on and next to cell edges and on the crop's border."""
    uniform = rng.uniform(-0.5, size - 0.5, size=(count, 2))
    cells = rng.integers(0, heatmap, size=(count, 2))
    nudges = rng.choice([0.0, 1e-6, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-6], size=(count, 2))
    on_edges = np.clip((cells + nudges) * size / heatmap - 0.5, -0.5, size - 0.5)
    border = np.array([[-0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5], [0.0, size - 1.0], [size / 2, -0.5]])
    return np.concatenate([uniform, on_edges, border])


# The benchmark configs' 1.5, the synthetic config's 2.0, and MIN_FIT_SIGMA: the narrowest integer Gaussian the fit
# reads within 0.05 px, the map's border included.
@pytest.mark.parametrize("int_sigma", [MIN_FIT_SIGMA, 1.5, 2.0])
@pytest.mark.parametrize("integer_fit", [False, True])
@pytest.mark.parametrize(("size", "heatmap", "decimal", "dec_sigma"), GEOMETRIES)
def test_round_trip_within_contract(
    size: int, heatmap: int, decimal: int, dec_sigma: float, integer_fit: bool, int_sigma: float
) -> None:
    rng = np.random.default_rng(7)
    points = hard_points(size, heatmap, rng, 1500)
    codec = HIHCodec(len(points), size, heatmap, decimal, int_sigma, dec_sigma, integer_fit)
    decoded = codec.decode(batched(codec.encode(points, np.ones(len(points), bool))))[0].numpy()
    assert decoded.shape == points.shape
    assert np.abs(decoded - points).max() < CONTRACT_PX


def test_encode_shapes_dtypes_and_weights() -> None:
    codec = HIHCodec(4, 256, 64, 8, 1.5, 1.0)
    points = np.array([[10.0, 20.0], [300.0, 5.0], [-3.0, 100.0], [128.0, 128.0]])
    visible = np.array([True, True, True, False])
    targets = codec.encode(points, visible)
    assert targets["int_heatmap"].shape == (4, 64, 64)
    assert targets["dec_heatmap"].shape == (4, 8, 8)
    assert all(value.dtype == np.float32 for value in targets.values())
    # Outside the crop -> weight 0; an occluded point inside keeps its target and weight.
    np.testing.assert_array_equal(targets["weight"], [1, 0, 0, 1])
    assert targets["int_heatmap"][3].max() == pytest.approx(1.0)


def test_encode_rejects_wrong_point_count() -> None:
    with pytest.raises(ValueError, match="expected 3 landmarks"):
        HIHCodec(3, 256, 64, 8, 1.5, 1.0).encode(np.zeros((2, 2)), np.ones(2))


def test_integer_peak_sits_on_its_cell_near_the_origin() -> None:
    """The released code puts the peak on k + 1 for k < 5; ours is on k everywhere."""
    codec = HIHCodec(3, 256, 64, 8, 1.5, 1.0)
    points = np.array([[0.0, 0.0], [9.0, 13.0], [250.0, 17.5]])
    cells, _ = heatmap_cells(points, 256, 64)
    maps = codec.encode(points, np.ones(3))["int_heatmap"]
    for heatmap, (kx, ky) in zip(maps, cells, strict=True):
        assert np.unravel_index(heatmap.argmax(), heatmap.shape) == (ky, kx)
        assert heatmap[ky, kx] == pytest.approx(1.0)


def test_fit_draws_the_integer_peak_at_the_exact_position_and_reads_only_that_map() -> None:
    """With the integer fit the integer Gaussian carries the fraction itself; the decimal map is still encoded (the
    head is trained) but decode needs only the integer map, so a decimal head that learned nothing costs nothing."""
    codec = HIHCodec(2, 96, 24, 6, 1.5, 1.0, integer_fit=True)
    points = np.array([[(10 + 0.3) * 4 - 0.5, (20 + 0.95) * 4 - 0.5], [47.2, 3.9]])
    targets = codec.encode(points, np.ones(2))
    assert targets["dec_heatmap"].shape == (2, 6, 6)
    int_map = torch.from_numpy(targets["int_heatmap"])[None]
    np.testing.assert_allclose(refine_log_gaussian(int_map, 1.5)[0, 0].numpy(), [10.3 - 0.5, 20.95 - 0.5], atol=1e-4)
    np.testing.assert_allclose(codec.decode({"int_heatmap": int_map})[0].numpy(), points, atol=CONTRACT_PX)


def test_fit_answers_the_argmax_of_a_peak_with_data_on_too_few_lines() -> None:
    """A peak on the map's first row, ~0 on every other row (and one on a single column): no curvature across the
    rows to fit, so the point is its argmax (PyTorch and onnxruntime would round a fit of float noise differently)."""
    maps = np.zeros((1, 2, 24, 24), np.float32)
    maps[0, 0, 0] = gaussian_maps(np.array([[9.3, 0.0]]), 24, 1.5)[0, 0]
    maps[0, 1, :, 4] = gaussian_maps(np.array([[0.0, 15.6]]), 24, 1.5)[0, :, 0]
    fitted = fit_log_gaussian(torch.from_numpy(maps))[0].numpy()
    np.testing.assert_allclose(fitted, [[9.0, 0.0], [4.0, 16.0]], atol=1e-6)


def test_fit_needs_a_map_as_wide_as_its_window() -> None:
    with pytest.raises(ValueError, match="heatmap_size >= 7"):
        HIHCodec(1, 16, 4, 2, 1.5, 0.5, integer_fit=True)


def test_decimal_centre_is_continuous() -> None:
    """f = 0.3 of a cell puts the decimal Gaussian at 8 * 0.3 - 0.5 = 1.9, not at a rounded pixel."""
    codec = HIHCodec(1, 256, 64, 8, 1.5, 1.0)
    point = np.array([[(10 + 0.3) * 4 - 0.5, (20 + 0.95) * 4 - 0.5]])
    dec = codec.encode(point, np.ones(1))["dec_heatmap"]
    centre = refine_log_gaussian(torch.from_numpy(dec)[None], 1.0)[0, 0].numpy()
    np.testing.assert_allclose(centre, [1.9, 8 * 0.95 - 0.5], atol=1e-4)


@pytest.mark.parametrize("centre", [-0.5, -0.2, 0.0, 3.25, 6.7, 7.0, 7.5])
def test_refine_is_exact_for_gaussians_up_to_an_offset(centre: float) -> None:
    """Map edges included, and an additive constant (what a KL-trained logit map carries) changes nothing."""
    true = np.array([[centre, 7.0 - centre]])
    maps = torch.from_numpy(gaussian_maps(true, 8, 1.0))[None]
    for offset in (0.0, -3.7, 12.0):
        np.testing.assert_allclose(refine_log_gaussian(maps + offset, 1.0)[0].numpy(), true, atol=1e-4)


def test_decode_takes_logits_and_prefers_them_over_targets() -> None:
    codec = HIHCodec(2, 128, 32, 8, 1.5, 1.0)
    points = np.array([[40.2, 77.9], [3.3, 120.6]])
    targets = batched(codec.encode(points, np.ones(2)))
    logits = targets["dec_heatmap"] * 1.0 - 5.0
    outputs = {"int_heatmap": targets["int_heatmap"], "dec_logits": logits, "dec_heatmap": torch.zeros_like(logits)}
    np.testing.assert_allclose(codec.decode(outputs)[0].numpy(), points, atol=CONTRACT_PX)


def test_decode_names_missing_keys() -> None:
    codec = HIHCodec(1, 128, 32, 8, 1.5, 1.0)
    with pytest.raises(KeyError, match="dec_logits"):
        codec.decode({"int_heatmap": torch.zeros(1, 1, 32, 32)})


def test_decode_is_batched() -> None:
    codec = HIHCodec(3, 128, 32, 8, 1.5, 1.0)
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 127, size=(5, 3, 2))
    encoded = [codec.encode(p, np.ones(3)) for p in points]
    batch = {name: torch.from_numpy(np.stack([e[name] for e in encoded])) for name in encoded[0]}
    decoded = codec.decode(batch)
    assert decoded.shape == (5, 3, 2) and decoded.dtype == torch.float32
    np.testing.assert_allclose(decoded.numpy(), points, atol=CONTRACT_PX)


def test_codec_rejects_a_one_pixel_decimal_map() -> None:
    with pytest.raises(ValueError, match="decimal_size"):
        HIHCodec(1, 128, 32, 1, 1.5, 1.0)
