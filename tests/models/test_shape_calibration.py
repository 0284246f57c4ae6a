"""Shape calibration: the identity until fitted, a fit that undoes a shrunk shape mode, a correction that turns and
scales with the face and leaves its eyes alone, and a model that carries it through `predict`, checkpoint and ONNX."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from landmarkflow.config import load_config
from landmarkflow.export.onnx import compare_outputs, export_onnx
from landmarkflow.layouts import get_layout
from landmarkflow.models.shape_calibration import ShapeCalibration
from landmarkflow.models.zoo import build_model, parse_params
from landmarkflow.runtime import DeployInfo
from landmarkflow.train.checkpoint import CALIBRATED_VAL_NME, kept_val_nme, load_state
from landmarkflow.train.trainer import Trainer, seed_everything
from tests.fakes import ONE_CPU, dot_face_record
from tests.models.small_configs import SMALL_HIH

LAYOUT = get_layout("68")


def similarity(points: np.ndarray, degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    turn = np.radians(degrees)
    matrix = scale * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return points @ matrix.T + np.asarray(shift)


def faces(count: int, shrink: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` mirror-symmetric faces varying in three symmetric shape modes that leave the eyes alone (the same for
    every seed), each placed by a random similarity, and answers that read those modes `shrink` times as strongly,
    plus a little noise."""
    shapes = np.random.default_rng(0)
    mean = shapes.uniform(-1, 1, (68, 2))
    mean = (mean + LAYOUT.flip_points(mean, 0)) / 2
    modes = shapes.normal(size=(3, 68, 2))
    modes = (modes + modes[:, list(LAYOUT.flip_permutation)] * [-1, 1]) / 2
    modes[:, [*LAYOUT.groups["right_eye"], *LAYOUT.groups["left_eye"]]] = 0
    rng = np.random.default_rng(seed + 1)
    weights = rng.normal(0, 0.15, (count, 3))
    truths, answers = [], []
    for w in weights:
        place = (rng.uniform(-30, 30), rng.uniform(40, 120), tuple(rng.uniform(0, 200, 2)))
        shape = np.tensordot(w, modes, axes=1)
        truths.append(similarity(mean + shape, *place))
        answers.append(similarity(mean + shrink * shape + rng.normal(0, 0.01, (68, 2)), *place))
    return np.stack(answers), np.stack(truths)


def calibrated(calibration: ShapeCalibration, points: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return calibration(torch.from_numpy(points).float()).double().numpy()


def error(points: np.ndarray, truths: np.ndarray) -> float:
    return float(np.linalg.norm(points - truths, axis=-1).mean())


@pytest.fixture(scope="module")
def fitted() -> ShapeCalibration:
    calibration = ShapeCalibration(LAYOUT, 4)
    calibration.fit(*faces(400, shrink=0.6))
    return calibration


def test_an_unfitted_calibration_is_the_identity() -> None:
    answers, _ = faces(5, shrink=0.6)
    np.testing.assert_allclose(calibrated(ShapeCalibration(LAYOUT, 4), answers), answers, atol=1e-4)


def test_a_fit_undoes_shrunk_shape_modes_on_new_faces(fitted: ShapeCalibration) -> None:
    answers, truths = faces(100, shrink=0.6, seed=1)
    before, after = error(answers, truths), error(calibrated(fitted, answers), truths)
    assert after < 0.25 * before
    assert fitted.gain[:3].min() > 1.4  # the shrunk modes are read 1 / 0.6 times stronger


def test_the_correction_turns_scales_and_moves_with_the_face(fitted: ShapeCalibration) -> None:
    answers, _ = faces(8, shrink=0.6, seed=2)
    placed = similarity(answers, 40.0, 0.5, (-20.0, 7.0))
    np.testing.assert_allclose(
        calibrated(fitted, placed), similarity(calibrated(fitted, answers), 40.0, 0.5, (-20.0, 7.0)), atol=1e-3
    )


def test_the_correction_leaves_the_eyes_where_the_answer_put_them(fitted: ShapeCalibration) -> None:
    answers, _ = faces(8, shrink=0.6, seed=3)
    answers += np.random.default_rng(3).normal(0, 0.1, answers.shape)  # eyes the modes do not explain
    eyes = [*LAYOUT.groups["right_eye"], *LAYOUT.groups["left_eye"]]
    corrected = calibrated(fitted, answers)
    np.testing.assert_allclose(corrected[:, eyes], answers[:, eyes], atol=1e-4)
    assert np.abs(corrected - answers).max() > 0.05


def test_the_numpy_correction_is_the_calibration(fitted: ShapeCalibration) -> None:
    """LGCN's shape fit runs where only onnxruntime is installed: its numpy twin must correct as the module does,
    unfitted (the identity) or fitted, wherever the face is."""
    answers, _ = faces(20, shrink=0.6, seed=4)
    placed = similarity(answers, -25.0, 1.7, (5.0, -3.0))
    np.testing.assert_allclose(ShapeCalibration(LAYOUT, 4).correction()(placed), placed, atol=1e-9)
    np.testing.assert_allclose(fitted.correction()(placed), calibrated(fitted, placed), atol=1e-3)


@pytest.mark.parametrize(
    "points",
    [np.zeros((0, 68, 2)), np.full((1, 68, 2), 7.0), np.full((1, 68, 2), np.nan)],
    ids=["no faces", "all points at one place", "nan"],
)
def test_the_numpy_correction_is_the_calibration_on_degenerate_answers(
    fitted: ShapeCalibration, points: np.ndarray
) -> None:
    np.testing.assert_array_equal(fitted.correction()(points), calibrated(fitted, points))


def test_answers_that_never_move_along_a_mode_keep_their_gain() -> None:
    """An untrained network answers every face alike: its answers (and their mirror images) barely vary along any mode,
    and a fitted slope was noise over nothing (gains of 10^4; numpy warned of a poorly conditioned fit where they did
    not vary at all). Each mode keeps a gain of 1 and moves by the mean offset."""
    answers, truths = faces(40, shrink=0.6)
    same = np.broadcast_to(answers[0], answers.shape)
    calibration = ShapeCalibration(LAYOUT, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibration.fit(same, truths)
    np.testing.assert_array_equal(calibration.gain.numpy(), np.ones(4, np.float32))
    assert np.isfinite(calibrated(calibration, same)).all()


def test_a_fit_needs_ten_faces_a_mode() -> None:
    with pytest.raises(ValueError, match="shape calibration of 4 modes needs at least 40 faces, got 39"):
        ShapeCalibration(LAYOUT, 4).fit(*faces(39, shrink=0.6))


@pytest.mark.parametrize(
    "section,message",
    [
        ({**SMALL_HIH, "shape_calibration_modes": 2}, "needs a layout's eyes, but num_points 5"),
        ({**SMALL_HIH, "num_points": 19, "shape_calibration_modes": 35}, "at most 34 for 19 points"),
    ],
)
def test_params_reject_modes_a_layout_cannot_have(section: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_params(section)


SECTIONS = {
    "hih": {**SMALL_HIH, "num_points": 19, "flip_test": True},
    "dsat": {"name": "dsat", "layout": "19", "input_size": 64, "heatmap_size": 16, "stem_stride": 2, "hourglasses": 1,
             "channels": 16, "hourglass_depth": 2, "head_channels": 8, "transformer_layers": 1,
             "transformer_heads": 2, "flip_test": True},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_predict_checkpoint_and_onnx_carry_the_fit(name: str, tmp_path: Path) -> None:
    """DSAT has a `predict` of its own (it averages the flip test's heatmaps): the fit must reach it too. The fit
    is to random shapes, so that every mode is a real one."""
    torch.manual_seed(0)
    model = build_model({**SECTIONS[name], "shape_calibration_modes": 3}).eval()
    for module in model.modules() if name == "hih" else ():  # HIH's own init draws flat maps: one point for all
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model.predict(images).numpy()
    info = DeployInfo(model=name, layout="19", num_points=19, input_size=64, box_scale=1.25, config_hash="0")
    unfitted = export_onnx(model, tmp_path / "unfitted.onnx", info)  # an alignment to a zero mean shape: no nan
    assert compare_outputs(model, unfitted, images.numpy())["max_abs_diff_px"] < 1e-3
    rng = np.random.default_rng(0)
    truths = rng.uniform(10, 50, (40, 19, 2))
    model.shape_calibration.fit(truths + rng.normal(0, 2, truths.shape), truths)
    with torch.no_grad():
        fitted = model.predict(images).numpy()
    assert np.abs(fitted - plain).max() > 0.05
    np.testing.assert_allclose(calibrated(model.shape_calibration, plain), fitted, atol=1e-3)
    with torch.no_grad():  # fitted to both sides of every face, the correction keeps the flip test's symmetry
        mirrored = model.predict(images.flip(-1)).numpy()
    np.testing.assert_allclose(get_layout("19").flip_points(mirrored, 64), fitted, atol=1e-3)

    reloaded = build_model({**SECTIONS[name], "shape_calibration_modes": 3}).eval()
    reloaded.load_state_dict(model.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(reloaded.predict(images).numpy(), fitted, atol=1e-5)
    path = export_onnx(model, tmp_path / "fitted.onnx", info)
    assert compare_outputs(model, path, images.numpy())["max_abs_diff_px"] < 1e-3


@pytest.mark.parametrize("modes,fitted", [(1, True), (2, False)])
def test_training_fits_the_calibration_into_model_pt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, modes: int, fitted: bool
) -> None:
    """Ten train faces: enough for one mode; two are skipped, with a warning, rather than fitted to noise."""
    torch.set_num_threads(1)
    overrides = {
        "model.channels": 16,
        "model.decimal_channels": 16,
        "model.shape_calibration_modes": modes,
        "train.epochs": 1,
        "train.batch_size": 4,
        "train.amp": False,
        "eval.batch_size": 4,
    }
    config = load_config("configs/hih_synthetic_tiny.yaml", overrides)
    seed_everything(config.train.seed)
    records = [dot_face_record(tmp_path, i) for i in range(12)]
    trainer = Trainer(
        config, build_model(config.model), records[:10], records[10:], tmp_path, tmp_path / "out", ONE_CPU
    )
    with caplog.at_level(logging.INFO, logger="landmarkflow"):
        trainer.fit()
    state = load_state(tmp_path / "out" / "model.pt")
    gain = state["model"]["shape_calibration.gain"]
    assert gain.shape == (modes,) and torch.equal(gain, torch.ones(modes)) != fitted
    if fitted:
        assert f"shape calibration of {modes} modes on 10 train faces: train NME" in caplog.text
        # what `landmarkflow train` reports is the calibrated model's validation, the one the log line ends with
        assert re.search(r"validation [\d.]+% -> ([\d.]+)%", caplog.text)[1] == f"{100 * kept_val_nme(state):.2f}"
        assert kept_val_nme(state) == state[CALIBRATED_VAL_NME] != state["history"]["val_nme"][-1]
    else:
        assert kept_val_nme(state) == state["history"]["val_nme"][-1]
        assert "shape calibration skipped: 2 modes need at least 20 train faces, this run has 10" in caplog.text
