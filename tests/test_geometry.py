import cv2
import numpy as np
import pytest

from landmarkflow.geometry import crop_matrix, crop_shrink, invert_affine, transform_points, warp_image


def test_box_centre_lands_on_crop_centre_and_inverse_round_trips() -> None:
    box = np.array([40.0, 60.0, 140.0, 180.0])
    matrix = crop_matrix(box, size=128, box_scale=1.25, rotation_deg=17.0, shift=(0.0, 0.0))
    centre = transform_points(np.array([[90.0, 120.0]]), matrix)
    np.testing.assert_allclose(centre, [[63.5, 63.5]])
    pts = np.random.default_rng(0).uniform(0, 200, size=(30, 2))
    np.testing.assert_allclose(transform_points(transform_points(pts, matrix), invert_affine(matrix)), pts)


def test_crop_side_is_box_scale_times_longest_side() -> None:
    matrix = crop_matrix(np.array([0.0, 0.0, 100.0, 50.0]), size=200, box_scale=2.0)
    corners = transform_points(np.array([[-50.0, 25.0], [150.0, 25.0]]), matrix)
    assert corners[1, 0] - corners[0, 0] == pytest.approx(200.0)


def test_flip_maps_x_to_size_minus_one_minus_x() -> None:
    box = np.array([10.0, 10.0, 70.0, 70.0])
    plain = crop_matrix(box, 64, 1.0)
    mirrored = crop_matrix(box, 64, 1.0, flip=True)
    pts = np.array([[20.0, 30.0], [55.0, 12.0]])
    a, b = transform_points(pts, plain), transform_points(pts, mirrored)
    np.testing.assert_allclose(b[:, 0], 63 - a[:, 0])
    np.testing.assert_allclose(b[:, 1], a[:, 1])


def _ramp(height: int, width: int) -> np.ndarray:
    """A float image whose channels rise linearly across it: area averaging and bilinear sampling agree on it."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.dstack([xs / width, ys / height, (xs + ys) / (width + height)]) * 255


def test_a_crop_within_the_shrink_limit_is_sampled_as_without_one() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
    matrix = crop_matrix(np.array([50.0, 40.0, 250.0, 260.0]), 96, 1.25, rotation_deg=20.0)
    assert crop_shrink(matrix) == pytest.approx(1.25 * 220 / 96)
    np.testing.assert_array_equal(warp_image(image, matrix, 96, max_shrink=3.0), warp_image(image, matrix, 96))


BIG_BOXES = {"inside": [300.0, 200.0, 800.0, 700.0], "over_a_corner": [-200.0, -100.0, 300.0, 400.0]}


@pytest.mark.parametrize("box", BIG_BOXES.values(), ids=BIG_BOXES.keys())
def test_a_crop_beyond_the_shrink_limit_averages_what_bilinear_sampling_skips(box: list[float]) -> None:
    """Shrunk 6.5x, a checkerboard of single pixels is grey, not the moire that samples 6.5 pixels apart make of it;
    a ramp lands where it did (points and pixels still move together), and so does the black outside the image."""
    ys, xs = np.mgrid[0:900, 0:1200]
    checker = np.repeat(((xs + ys) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)
    matrix = crop_matrix(np.array(box), 96, 1.25, rotation_deg=25.0)
    assert crop_shrink(matrix) == pytest.approx(1.25 * 500 / 96)
    inside = (warp_image(np.full_like(checker, 255), matrix, 96) == 255).all(axis=2).astype(np.uint8)
    seen = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0  # a crop pixel from the image's edge, which blends in black
    assert warp_image(checker, matrix, 96)[seen].std() > 40
    assert warp_image(checker, matrix, 96, max_shrink=2.0)[seen].std() < 6
    ramp = _ramp(900, 1200)
    plain, limited = warp_image(ramp, matrix, 96), warp_image(ramp, matrix, 96, max_shrink=2.0)
    np.testing.assert_allclose(limited[seen], plain[seen], atol=0.05)
    outside = cv2.erode((plain.sum(axis=2) == 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert (limited.sum(axis=2)[outside] == 0).all()


def test_points_and_pixels_move_together() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    cv2.circle(image, (70, 30), 2, (255, 255, 255), -1)
    matrix = crop_matrix(np.array([20.0, 10.0, 90.0, 80.0]), 96, 1.3, rotation_deg=25.0)
    crop = warp_image(image, matrix, 96)
    expected = transform_points(np.array([[70.0, 30.0]]), matrix)[0]
    ys, xs = np.nonzero(crop[..., 0] > 0)
    weights = crop[ys, xs, 0].astype(float)
    found = np.array([np.average(xs, weights=weights), np.average(ys, weights=weights)])
    np.testing.assert_allclose(found, expected, atol=0.15)
