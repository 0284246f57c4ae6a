import numpy as np
import pytest
from scipy.integrate import simpson

from landmarkflow.evaluation.baseline import MeanShape
from landmarkflow.evaluation.metrics import auc, ced_curve, failure_rate, per_image_nme, summarize, threshold_tag
from landmarkflow.evaluation.perturb import perturb_boxes
from landmarkflow.layouts import get_layout

RNG = np.random.default_rng(0)


def _face_68(right_eye_outer: tuple[float, float], left_eye_outer: tuple[float, float]) -> np.ndarray:
    points = RNG.uniform(0, 200, size=(68, 2))
    points[36], points[45] = right_eye_outer, left_eye_outer
    return points


def test_nme_68_points_uses_outer_eye_corners() -> None:
    gt = np.stack([_face_68((10, 20), (50, 20)), _face_68((0, 0), (0, 20))])  # inter-ocular 40 and 20
    pred = gt.copy()
    pred[0] += (3.0, 4.0)  # every point 5 px off -> 5 / 40
    pred[1, :34] += (6.0, 8.0)  # half the points 10 px off -> mean 5 px -> 5 / 20
    nmes = per_image_nme(pred, gt, get_layout("68"), None)
    np.testing.assert_allclose(nmes, [0.125, 0.25])


def test_nme_19_points_uses_box_size_and_needs_boxes() -> None:
    gt = RNG.uniform(0, 100, size=(1, 19, 2))
    pred = gt + np.sqrt(50.0 / 2)  # every point sqrt(50) ~ 7.07 px off
    box = np.array([[10.0, 10.0, 110.0, 60.0]])  # sqrt(100 * 50) ~ 70.7
    np.testing.assert_allclose(per_image_nme(pred, gt, get_layout("19"), box), [0.1])
    with pytest.raises(ValueError, match="needs the face boxes"):
        per_image_nme(pred, gt, get_layout("19"), None)


def test_nme_rejects_wrong_point_count_and_zero_normaliser() -> None:
    with pytest.raises(ValueError, match=r"layout 68 needs \(N, 68, 2\) points"):
        per_image_nme(np.zeros((2, 98, 2)), np.zeros((2, 98, 2)), get_layout("68"))
    with pytest.raises(ValueError, match=r"not positive for faces \[0\]"):
        per_image_nme(np.ones((1, 68, 2)), np.zeros((1, 68, 2)), get_layout("68"))


def test_failure_rate_counts_strictly_above_threshold() -> None:
    assert failure_rate([0.05, 0.10, 0.15, 0.20], 0.10) == 0.5
    assert failure_rate([0.05, np.nan], 0.10) == 0.5
    with pytest.raises(ValueError, match="empty"):
        failure_rate([], 0.1)


def test_auc_limits_and_uniform() -> None:
    assert auc(np.zeros(50), 0.10) == pytest.approx(1.0, abs=1e-3)
    assert auc(np.full(50, 0.2), 0.10) == 0.0
    assert auc(np.concatenate([np.zeros(50), np.full(50, 0.3)]), 0.10) == pytest.approx(0.5, abs=1e-3)
    uniform = np.linspace(0, 0.10, 100_001)
    assert auc(uniform, 0.10) == pytest.approx(0.5, abs=1e-3)
    assert auc(uniform, 0.05) == pytest.approx(0.25, abs=1e-3)  # half the images, half the area each


@pytest.mark.parametrize("threshold", [0.08, 0.10])
def test_auc_matches_hih_loop(threshold: float) -> None:
    nmes = RNG.gamma(2.0, 0.02, size=300)
    xs = np.arange(0, threshold + 1e-4, 1e-4)
    ys = np.array([np.count_nonzero(nmes <= x) / len(nmes) for x in xs])
    assert auc(nmes, threshold) == pytest.approx(simpson(ys, x=xs) / threshold, rel=1e-12)


def test_ced_is_monotone_from_zero_to_threshold() -> None:
    nmes = RNG.gamma(2.0, 0.02, size=200)
    xs, ys = ced_curve(nmes, 0.10, step=1e-3)
    assert xs[0] == 0.0 and xs[-1] == pytest.approx(0.10) and len(xs) == 101
    assert np.all(np.diff(ys) >= 0)
    assert ys[-1] == pytest.approx(np.mean(nmes <= xs[-1]))


def test_summarize_names_and_subsets() -> None:
    nmes = np.array([0.02, 0.04, 0.12, 0.06])
    subsets = [["common", "full"], ["common", "full"], ["challenging", "full"], ["ibug w/ space"]]
    metrics = summarize(nmes, fr_threshold=0.08, auc_threshold=0.10, subsets=subsets)
    assert metrics["nme"] == pytest.approx(0.06)
    assert metrics["fr_8"] == 0.25
    assert metrics["nme_common"] == pytest.approx(0.03)
    assert metrics["fr_8_challenging"] == 1.0 and metrics["auc_10_challenging"] == 0.0
    assert metrics["nme_full"] == pytest.approx(0.06)
    assert "nme_ibug_w/_space" in metrics
    assert set(summarize(nmes)) == {"nme", "fr_10", "auc_10"}
    assert [threshold_tag(t) for t in (0.1, 0.08, 0.075)] == ["10", "8", "7.5"]
    with pytest.raises(ValueError, match="3 subset label lists for 4"):
        summarize(nmes, subsets=subsets[:3])
    with pytest.raises(TypeError, match="list of labels"):
        summarize(nmes, subsets=["common", "common", "full", "full"])


def test_mean_shape_of_one_shape_moved_and_scaled_is_exact() -> None:
    template = RNG.uniform(0, 1, size=(68, 2))
    template[36], template[45] = (0.2, 0.4), (0.8, 0.4)
    scales, offsets = RNG.uniform(50, 300, size=12), RNG.uniform(0, 500, size=(12, 2))
    faces = template[None] * scales[:, None, None] + offsets[:, None, :]
    boxes = np.concatenate([faces.min(axis=1), faces.max(axis=1)], axis=1)
    baseline = MeanShape.fit(faces[:8], boxes[:8], box_scale=1.25, size=256)
    assert baseline.shape.shape == (68, 2)
    predicted = baseline.predict(boxes[8:])
    np.testing.assert_allclose(predicted, faces[8:], atol=1e-9)
    assert per_image_nme(predicted, faces[8:], get_layout("68")).max() < 1e-9
    assert baseline.predict(np.zeros((0, 4))).shape == (0, 68, 2)


def test_mean_shape_averages_in_the_crop_frame() -> None:
    box = np.array([[0.0, 0.0, 100.0, 100.0]])
    low, high = np.zeros((1, 19, 2)) + 40.0, np.zeros((1, 19, 2)) + 60.0
    baseline = MeanShape.fit(np.concatenate([low, high]), np.concatenate([box, box]), 1.0, 100)
    np.testing.assert_allclose(baseline.predict(np.array([[100.0, 100.0, 300.0, 300.0]])), np.full((1, 19, 2), 200.0))
    with pytest.raises(ValueError, match=r"\(N, 4\) boxes"):
        MeanShape.fit(low, np.zeros((2, 4)), 1.0, 100)


def test_perturbed_boxes_stay_within_the_promised_shift_and_scale() -> None:
    boxes = np.array([[100.0, 50.0, 200.0, 250.0]] * 500)
    moved = perturb_boxes(boxes, 0.2, (0.8, 1.5), seed=3)
    size, new_size = boxes[:, 2:] - boxes[:, :2], moved[:, 2:] - moved[:, :2]
    shift = ((moved[:, :2] + moved[:, 2:]) / 2 - (boxes[:, :2] + boxes[:, 2:]) / 2) / size
    factor = new_size / size
    assert np.abs(shift).max() <= 0.2 and np.abs(shift).max() > 0.18
    np.testing.assert_allclose(factor[:, 0], factor[:, 1])  # the aspect ratio is kept
    assert 0.8 <= factor.min() < 0.82 and 1.48 < factor.max() <= 1.5
    np.testing.assert_array_equal(moved, perturb_boxes(boxes, 0.2, (0.8, 1.5), seed=3))
    np.testing.assert_array_equal(perturb_boxes(boxes, 0.0, (1.0, 1.0), seed=3), boxes)
