"""LGCN: paper parameter count, kernel vs the released numbers, codec round trip, loss weighting, overfitting,
ONNX parity, configs, and the constrained PCA shape fit."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from landmarkflow.codecs.lgcn import LGCNCodec
from landmarkflow.codecs.lgcn_kernel import lgcn_kernel
from landmarkflow.config import load_config
from landmarkflow.data.synthetic.face3d import TEMPLATE_68
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records, torch_predictor
from landmarkflow.export.onnx import compare_outputs, export_onnx
from landmarkflow.layouts import LAYOUTS, get_layout
from landmarkflow.models.lgcn import LGCN, FixedBlur, shape_fitted_predictor
from landmarkflow.models.lgcn_shape import ShapeModel, fit_face, fit_shapes, solve_lsi
from landmarkflow.models.params.lgcn import LGCNParams
from landmarkflow.models.zoo import build_model, model_names
from landmarkflow.runtime import DeployInfo
from landmarkflow.train.calibrate import calibrate_shapes
from landmarkflow.train.checkpoint import CALIBRATED_VAL_NME, kept_val_nme, load_state
from landmarkflow.train.trainer import Trainer, seed_everything
from tests.fakes import ONE_CPU, dot_face_record
from tests.models.overfit import fit_batch
from tests.models.small_configs import SMALL_HIH, SMALL_LGCN

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
REFERENCE_KERNEL = ROOT.parent / "shared" / "data" / "lgcn_kernel45.txt"
CONTRACT_PX = 0.05


def collate(codec: LGCNCodec, points: np.ndarray) -> dict[str, torch.Tensor]:
    encoded = [codec.encode(p, np.ones(len(p), bool)) for p in points]
    return {name: torch.from_numpy(np.stack([e[name] for e in encoded])) for name in encoded[0]}


def test_paper_parameter_count() -> None:
    """nf = 128 on 68 points: 4.19 M (docs/models.md §4.1); nf = 64: 1.10 M."""
    assert sum(p.numel() for p in build_model({"name": "lgcn"}).parameters()) / 1e6 == pytest.approx(4.19, rel=0.01)
    assert sum(p.numel() for p in build_model({"name": "lgcn", "filters": 64}).parameters()) / 1e6 == pytest.approx(
        1.10, rel=0.01
    )


def test_kernel_matches_the_released_numbers() -> None:
    if not REFERENCE_KERNEL.is_file():
        pytest.skip(f"reference kernel {REFERENCE_KERNEL} not present (shared data is outside the repository)")
    reference = np.loadtxt(REFERENCE_KERNEL).reshape(45, 45)
    ours = lgcn_kernel(45)
    assert np.abs(ours - reference).max() < 0.01
    assert ours.sum() == pytest.approx(reference.sum(), rel=0.01)


@pytest.mark.parametrize(("size", "kernel"), [(24, 45), (40, 19), (17, 11)])
def test_blur_equals_the_direct_depthwise_convolution(size: int, kernel: int) -> None:
    x = torch.randn(2, 3, size, size)
    weight = torch.from_numpy(lgcn_kernel(kernel)).float()[None, None].repeat(3, 1, 1, 1)
    direct = F.conv2d(x, weight, padding=kernel // 2, groups=3)
    torch.testing.assert_close(FixedBlur(size, kernel)(x), direct, atol=1e-4, rtol=1e-4)


def test_registered_and_built_by_name() -> None:
    assert "lgcn" in model_names()
    model = build_model(SMALL_LGCN)
    assert isinstance(model, LGCN)
    assert (model.input_size, model.num_points, model.codec.kernel_size) == (24, 5, 11)


@pytest.mark.parametrize("layout", ["68", "98", "29", "19"])
def test_output_shapes_and_round_trip_per_layout(layout: str) -> None:
    points = LAYOUTS[layout].num_points
    model = build_model({**SMALL_LGCN, "num_points": points}).eval()
    with torch.no_grad():
        outputs = model(torch.rand(2, 3, 24, 24))
        landmarks = model.predict(torch.rand(2, 3, 24, 24))
    assert outputs["heatmap"].shape == outputs["heatmap_local"].shape == (2, points, 24, 24)
    assert landmarks.shape == (2, points, 2) and landmarks.dtype == torch.float32
    codec = LGCNCodec(points, 96)
    truth = np.random.default_rng(points).uniform(-0.5, 95.5, size=(3, points, 2))
    decoded = codec.decode(collate(codec, truth)).numpy()
    assert np.abs(decoded - truth).max() < CONTRACT_PX


@pytest.mark.parametrize(("size", "kernel"), [(96, 45), (32, 15), (24, 11)])
def test_round_trip_at_borders_and_corners(size: int, kernel: int) -> None:
    rng = np.random.default_rng(size)
    edges = np.array([-0.5, -0.499, -0.2, 0.0, 0.5, 1.0, size / 2, size - 1.5, size - 1.0, size - 0.51, size - 0.5])
    grid = np.stack(np.meshgrid(edges, edges), axis=-1).reshape(-1, 2)
    points = np.concatenate([grid, rng.uniform(-0.5, size - 0.5, size=(400, 2))])
    codec = LGCNCodec(len(points), size, kernel)
    decoded = codec.decode(collate(codec, points[None]))[0].numpy()
    assert np.abs(decoded - points).max() < CONTRACT_PX


def test_targets_are_the_blurred_bilinear_label() -> None:
    """K * y with y a bilinear unit splat: the same map as convolving a drawn label image with the kernel."""
    codec = LGCNCodec(2, 32, 15)
    points = np.array([[10.25, 20.6], [3.0, 7.0]])
    targets = codec.encode(points, np.ones(2, bool))
    label = np.zeros((2, 32, 32))
    for k, (x, y) in enumerate(points):
        x0, y0, fx, fy = int(x), int(y), x - int(x), y - int(y)
        label[k, y0 : y0 + 2, x0 : x0 + 2] = np.outer([1 - fy, fy], [1 - fx, fx])
    kernel = torch.from_numpy(lgcn_kernel(15))[None, None].repeat(2, 1, 1, 1)
    expected = F.conv2d(torch.from_numpy(label)[None], kernel, padding=7, groups=2)[0].numpy()
    np.testing.assert_allclose(targets["heatmap"], expected, atol=1e-5)
    np.testing.assert_array_equal(targets["label_mass"], [1, 1])


def test_points_outside_the_crop_get_no_target() -> None:
    codec = LGCNCodec(3, 32, 15)
    targets = codec.encode(np.array([[5.0, 5.0], [40.0, 3.0], [np.nan, 1.0]]), np.array([True, True, False]))
    np.testing.assert_array_equal(targets["weight"], [1, 0, 0])
    np.testing.assert_array_equal(targets["label_mass"], [1, 0, 0])
    assert not targets["heatmap"][1:].any()
    assert all(value.dtype == np.float32 for value in targets.values())


def test_encode_rejects_wrong_point_count() -> None:
    with pytest.raises(ValueError, match="expected 3 landmarks"):
        LGCNCodec(3, 32, 15).encode(np.zeros((2, 2)), np.ones(2))


def test_decode_names_a_missing_heatmap() -> None:
    with pytest.raises(KeyError, match="heatmap"):
        LGCNCodec(1, 32, 15).decode({"int_heatmap": torch.zeros(1, 1, 32, 32)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kernel_size": 10}, "odd"),
        ({"kernel_size": 49}, "wider than"),
        ({"local_5x5_layers": 0, "local_3x3_layers": 0}, "at least one layer"),
        ({"input_size": 6}, "greater than or equal to 7"),
        ({"dropout": 1.0}, "less than 1"),
        ({"layers": 3}, "Extra inputs"),
    ],
)
def test_params_reject_inconsistent_values(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LGCNParams.model_validate({**SMALL_LGCN, **change})


def test_loss_weights_points_as_the_paper() -> None:
    """L = 0.05 sum_l (0.1 + 0.5 mean(n) + n_l) m_l (SSE(o1) + SSE(o2)), summed over the batch."""
    model = build_model(SMALL_LGCN)
    codec = model.codec
    targets = collate(codec, np.random.default_rng(0).uniform(2, 21, size=(2, 5, 2)))
    targets["weight"][0, 1] = 0.0
    outputs = {"heatmap": torch.rand(2, 5, 24, 24), "heatmap_local": torch.rand(2, 5, 24, 24)}
    total, parts = model.loss(outputs, targets)
    sse = sum(((outputs[key] - targets["heatmap"]) ** 2).sum(dim=(2, 3)) for key in ("heatmap", "heatmap_local"))
    weight = (0.1 + 0.5 * 1.0 + 1.0) * targets["weight"]
    assert float(total) == pytest.approx(float(0.05 * (weight * sse).sum()), rel=1e-5)
    assert float(total) == pytest.approx(parts["local_sse"] + parts["final_sse"], rel=1e-5)
    # A point outside the crop has n_l = 0: the other points' weight drops with the mean label mass.
    targets["label_mass"][1, 0] = 0.0
    targets["weight"][1, 0] = 0.0
    weight[1] = (0.1 + 0.5 * 0.8 + 1.0) * targets["weight"][1]
    assert float(model.loss(outputs, targets)[0]) == pytest.approx(float(0.05 * (weight * sse).sum()), rel=1e-5)


def test_init_follows_the_source() -> None:
    torch.manual_seed(0)
    model = build_model({"name": "lgcn", "filters": 64, "num_points": 68, "input_size": 32, "kernel_size": 15})
    conv = model.local[3][0]
    fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert float(conv.weight.std()) == pytest.approx(np.sqrt(0.02) * np.sqrt(2 / fan_in), rel=0.05)
    assert all(float(m.bias.abs().max()) == 0 for m in model.modules() if isinstance(m, nn.Conv2d))


def test_overfits_a_tiny_batch() -> None:
    """60 Adam steps on 4 samples: decoded points land on the targets (well under a pixel) and the loss halves; it
    keeps falling slowly after that, as the kernel's broad tails (sigma 7.9 px at 96) are fitted."""
    torch.manual_seed(0)
    model = build_model(SMALL_LGCN)
    rng = np.random.default_rng(0)
    points = rng.uniform(3, 20, size=(4, 5, 2))
    images, targets = torch.rand(4, 3, 24, 24), collate(model.codec, points)
    losses = [step["loss"] for step in fit_batch(model, images, targets, steps=60, lr=3e-3)]
    assert losses[-1] < losses[0] / 1.8
    with torch.no_grad():
        decoded = model.predict(images).numpy()
    assert np.linalg.norm(decoded - points, axis=-1).mean() < 0.3


def test_onnx_export_matches_predict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(SMALL_LGCN)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
    info = DeployInfo(model="lgcn", layout="68", num_points=5, input_size=24, box_scale=1.35, config_hash="0123abcd")
    path = export_onnx(model, tmp_path / "model.onnx", info)
    images = np.random.default_rng(3).random((4, 3, 24, 24), dtype=np.float32)
    assert compare_outputs(model, path, images)["max_abs_diff_px"] < 1e-3


LGCN_CONFIGS = ["lgcn_300w.yaml", "lgcn_wflw.yaml", "lgcn_cofw.yaml", "lgcn_aflw.yaml", "lgcn_synthetic_tiny.yaml"]


@pytest.mark.parametrize("name", LGCN_CONFIGS)
def test_configs_validate_and_build(name: str) -> None:
    config = load_config(CONFIGS / name)
    assert isinstance(config.model, LGCNParams)
    assert config.model.num_points == LAYOUTS[config.data.layout].num_points
    assert config.model.make_codec().input_size == config.model.input_size


def test_paper_config_is_the_released_network() -> None:
    config = load_config(CONFIGS / "lgcn_300w.yaml")
    model = config.model
    assert (model.filters, model.input_size, model.kernel_size, model.global_dilation) == (128, 96, 45, 4)
    assert (model.local_5x5_layers, model.local_3x3_layers, model.global_layers) == (5, 10, 7)
    assert (config.train.optimizer, config.train.batch_size, config.train.lr) == ("sgd", 16, 1e-4)


def template_shapes(count: int, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """Faces from the 68-point template: random scale, width, rotation (+-10 deg), shift and 0.5 px point noise."""
    template = TEMPLATE_68[:, :2] - [0.0, 0.65]
    faces = []
    for _ in range(count):
        angle = np.deg2rad(rng.uniform(-10, 10))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        face = 33 * rng.uniform(0.9, 1.1) * (template * [rng.uniform(0.9, 1.1), 1.0]) @ rotation.T
        faces.append(face + (size - 1) / 2 + rng.uniform(-3, 3, 2) + rng.normal(0, 0.5, face.shape))
    return np.stack(faces)


@pytest.fixture(scope="module")
def shape_model() -> ShapeModel:
    return ShapeModel.fit(template_shapes(300, np.random.default_rng(0)), 96)


def corrupted_maps(truth: np.ndarray, bad: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ideal heatmaps, except that the `bad` points get a weak (0.35) peak 10 px off along both axes."""
    codec = LGCNCodec(68, 96)
    displaced = truth.copy()
    displaced[bad] += rng.choice([-10.0, 10.0], size=(len(bad), 2))
    maps = codec.encode(truth, np.ones(68, bool))["heatmap"]
    maps[bad] = 0.35 * codec.encode(displaced, np.ones(68, bool))["heatmap"][bad]
    return maps, displaced


def test_shape_model_is_built_from_training_shapes(shape_model: ShapeModel, tmp_path: Path) -> None:
    assert shape_model.mean.shape == (68, 2) and shape_model.basis.shape == (136, 12)
    # Ordering that every training face shares: the jaw's first point is left of its last, the chin below the nose.
    assert {(0, 16, 0), (30, 8, 1)} <= {tuple(c) for c in shape_model.constraints}
    loaded = ShapeModel.load(shape_model.save(tmp_path / "shape_model.npz"))
    np.testing.assert_array_equal(loaded.basis, shape_model.basis)
    np.testing.assert_array_equal(loaded.constraints, shape_model.constraints)
    assert loaded.size == 96


def test_fitting_repairs_corrupted_points_and_keeps_good_ones(shape_model: ShapeModel) -> None:
    rng = np.random.default_rng(1)
    bad = np.array([0, 8, 30, 36, 45, 48])
    good = np.setdiff1d(np.arange(68), bad)
    errors_before, errors_after, good_errors = [], [], []
    for truth in template_shapes(3, rng):
        maps, displaced = corrupted_maps(truth, bad, rng)
        fitted = fit_shapes(maps[None], shape_model)[0]
        errors_before.append(np.linalg.norm(displaced[bad] - truth[bad], axis=1).mean())
        errors_after.append(np.linalg.norm(fitted[bad] - truth[bad], axis=1).mean())
        good_errors.append(np.linalg.norm(fitted[good] - truth[good], axis=1).max())
    assert np.mean(errors_after) < 0.5 * np.mean(errors_before)
    # Confident peaks win the blend: good points stay on their sub-pixel peak, not on the shape model.
    assert max(good_errors) < 0.5


def test_fitted_shape_keeps_the_ordering_constraints(shape_model: ShapeModel) -> None:
    """Swapped eye-corner and mouth-corner maps pull the unconstrained fit across; the constrained one holds."""
    truth = template_shapes(1, np.random.default_rng(2))[0]
    maps = LGCNCodec(68, 96).encode(truth, np.ones(68, bool))["heatmap"]
    maps[[36, 39, 48, 54]] = maps[[39, 36, 54, 48]]
    fit = fit_face(maps, shape_model)
    i, j, axis = shape_model.constraints.T
    assert (fit.model_shape[i, axis] - fit.model_shape[j, axis]).max() <= 1e-6


def test_lsi_solver_projects_onto_an_active_constraint() -> None:
    """min |x - (2, 1)| s.t. x0 <= x1 is the projection (1.5, 1.5); an inactive constraint changes nothing."""
    a, y = np.eye(2), np.array([2.0, 1.0])
    np.testing.assert_allclose(solve_lsi(a, y, np.array([[1.0, -1.0]]), np.zeros(1)), [1.5, 1.5], atol=1e-9)
    np.testing.assert_allclose(solve_lsi(a, y, np.array([[-1.0, 1.0]]), np.zeros(1)), [2.0, 1.0], atol=1e-9)


def test_shape_fitted_predictor_runs_on_crops() -> None:
    """The evaluate hook: crops -> network heatmaps -> fitted points, any shape model of the model's crop side."""
    model = build_model({**SMALL_LGCN, "num_points": 68})
    rng = np.random.default_rng(3)
    shapes = template_shapes(40, rng, size=96) * 24 / 96
    predict = shape_fitted_predictor(model, ShapeModel.fit(shapes, 24))
    out = predict(rng.random((2, 3, 24, 24), dtype=np.float32))
    assert out.shape == (2, 68, 2) and np.isfinite(out).all()


def test_evaluation_gets_the_shape_fitting_as_a_named_post_step() -> None:
    """evaluate() reports NME with and without the post-step; HIH (no post-step) returns None."""
    rng = np.random.default_rng(0)
    model = build_model({**SMALL_LGCN, "num_points": 68}).eval()
    faces = rng.uniform(4, model.input_size - 5, size=(30, 68, 2))
    boxes = np.concatenate([faces.min(axis=1), faces.max(axis=1)], axis=1)
    name, predict = model.refined_predictor(faces, boxes, box_scale=1.2)
    assert name == "shape_fitted"
    points = predict(rng.random((2, 3, model.input_size, model.input_size), dtype=np.float32))
    assert points.shape == (2, 68, 2) and np.isfinite(points).all()
    hih = build_model(SMALL_HIH)
    assert hih.refined_predictor(faces[:, :5], boxes, box_scale=1.2) is None


def calibrated_lgcn(rng: np.random.Generator) -> tuple[LGCN, np.ndarray, np.ndarray]:
    """A small 68-point LGCN with 2 calibration modes, and 40 crop-frame train faces with their tight boxes."""
    model = build_model({**SMALL_LGCN, "num_points": 68, "shape_calibration_modes": 2}).eval()
    faces = template_shapes(40, rng) * model.input_size / 96
    return model, faces, np.concatenate([faces.min(axis=1), faces.max(axis=1)], axis=1)


def test_the_shape_calibration_corrects_the_fitted_points_and_not_the_graphs(tmp_path: Path) -> None:
    """A deployed LGCN answers with its shape fit: the calibration corrects that, through the shape model that export
    saves and `predict` loads, and leaves the network's own points alone."""
    rng = np.random.default_rng(4)
    model, faces, boxes = calibrated_lgcn(rng)
    images = torch.from_numpy(rng.random((2, 3, model.input_size, model.input_size), dtype=np.float32))
    with torch.inference_mode():
        graph, maps = (out.numpy() for out in model.predict_with_heatmaps(images))
    uncorrected = fit_shapes(maps, model.shape_model(faces, boxes, 1.25))
    model.shape_calibration.fit(faces + rng.normal(0, 1.0, faces.shape), faces)
    with torch.inference_mode():
        np.testing.assert_array_equal(model.predict(images).numpy(), graph)
    shapes = model.shape_model(faces, boxes, 1.25)
    corrected = model.refined_predictor(faces, boxes, 1.25)[1](images.numpy())
    np.testing.assert_allclose(corrected, shapes.correction(uncorrected), atol=1e-9)
    assert np.abs(corrected - uncorrected).max() > 1e-3
    loaded = ShapeModel.load(shapes.save(tmp_path / "shape_model.npz"))
    np.testing.assert_array_equal(fit_shapes(maps, loaded), fit_shapes(maps, shapes))


def test_calibration_after_training_is_fitted_to_the_shape_fits_answers(tmp_path: Path) -> None:
    """The calibration is fitted to the answers it will correct, the shape fit's (the graph's points score
    otherwise), on an even spread of at most 50 faces a mode."""
    torch.manual_seed(0)
    overrides = {"model.shape_calibration_modes": 2, "model.filters": 8, "eval.batch_size": 8}
    config = load_config(CONFIGS / "lgcn_synthetic_tiny.yaml", overrides)
    model = build_model(config.model).eval()
    records = [dot_face_record(tmp_path, index) for index in range(120)]
    points, boxes = (np.stack([getattr(r, name) for r in records]) for name in ("landmarks", "bbox"))
    spread = [records[index] for index in np.linspace(0, 119, 100).round().astype(int)]
    crops = (tmp_path, config.crop_spec, 8)
    fitted = predict_records(model.refined_predictor(points, boxes, config.data.box_scale)[1], spread, *crops)
    graph = predict_records(torch_predictor(model), spread, *crops)
    fit = calibrate_shapes(model, records, tmp_path, config)
    layout = get_layout("68")
    assert fit.faces == 100
    assert fit.nme_before == pytest.approx(mean_nme(fitted, spread, layout, config.data.normaliser), rel=1e-9)
    assert fit.nme_before != pytest.approx(mean_nme(graph, spread, layout, config.data.normaliser), rel=1e-3)


def test_training_calibrates_the_shape_fit_that_export_deploys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Export builds LGCN's shape model from the whole train split, the faces validation holds out included: the
    calibration after training must be fitted to the answers of that fit, not of one built from fewer shapes (other
    mean, modes and ordering constraints)."""
    overrides = {
        "model.shape_calibration_modes": 1,
        "model.filters": 8,
        "train.epochs": 1,
        "train.batch_size": 4,
        "train.amp": False,
        "train.cache_images": False,
        "eval.batch_size": 8,
    }
    config = load_config(CONFIGS / "lgcn_synthetic_tiny.yaml", overrides)
    seed_everything(config.train.seed)
    records = [dot_face_record(tmp_path, index) for index in range(14)]
    shape_models: list[np.ndarray] = []
    built = LGCN.shape_model

    def recorded(self: LGCN, train_landmarks: np.ndarray, *args: object) -> ShapeModel:
        shape_models.append(train_landmarks)
        return built(self, train_landmarks, *args)

    monkeypatch.setattr(LGCN, "shape_model", recorded)
    trainer = Trainer(
        config, build_model(config.model), records[:11], records[11:], tmp_path, tmp_path / "out", ONE_CPU
    )
    validations = []
    validate = trainer.validate
    monkeypatch.setattr(trainer, "validate", lambda: validations.append(1) or validate())
    with caplog.at_level(logging.INFO, logger="landmarkflow"):
        trainer.fit()
    [calibrated_on] = shape_models
    assert sorted(map(tuple, calibrated_on.reshape(len(calibrated_on), -1))) == sorted(
        tuple(record.landmarks.ravel()) for record in records
    )
    # validation reads the graph's points, which LGCN's calibration leaves alone: no passes before and after it
    assert len(validations) == 1  # the one epoch's
    assert re.search(
        r"shape calibration of 1 modes on 11 train faces: train NME [\d.]+% -> [\d.]+%$", caplog.text, re.M
    )
    state = load_state(tmp_path / "out" / "model.pt")
    assert CALIBRATED_VAL_NME not in state and kept_val_nme(state) == state["history"]["val_nme"][-1]
