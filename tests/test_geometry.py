import cv2
import numpy as np
import pytest

from landmarkflow.geometry import crop_matrix, invert_affine, transform_points, warp_image


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


def _centroid(crop: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
    weights = crop[..., 0].astype(float)
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("rotation", [0.0, 20.0])
def test_a_crop_that_shrinks_the_image_many_times_keeps_points_and_pixels_together(rotation: float) -> None:
    """The area-averaged path (a 600 px box read at 96 px) maps pixels as the plain warp does, to 1/20 px."""
    image = np.zeros((2000, 2400, 3), np.uint8)
    centre = np.array([1234.3, 987.6])
    cv2.circle(image, tuple(int(v) for v in np.round(centre * 16)), 40 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    matrix = crop_matrix(np.array([900.0, 700.0, 1500.0, 1300.0]), 96, 1.25, rotation, shift=(0.03, -0.02))
    np.testing.assert_allclose(_centroid(warp_image(image, matrix, 96)), transform_points(centre, matrix), atol=0.05)


def test_a_crop_that_shrinks_the_image_averages_its_pixels_instead_of_skipping_them() -> None:
    """Pixel noise read 20x smaller: bilinear sampling alone keeps nearly all of it (std ~49, aliasing), the
    area average very little; a crop shrinking less than 2x is the plain bilinear warp."""
    noise = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)
    matrix = crop_matrix(np.array([1000.0, 1000.0, 3000.0, 3000.0]), 96, 1.0)
    assert warp_image(noise, matrix, 96).std() < 6
    mild = crop_matrix(np.array([10.0, 10.0, 150.0, 150.0]), 96, 1.25)
    plain = cv2.warpAffine(noise[:200, :200], mild, (96, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    np.testing.assert_array_equal(warp_image(noise[:200, :200], mild, 96), plain)


def test_a_shrinking_crop_outside_the_image_is_black_and_one_over_its_edge_keeps_the_inside() -> None:
    image = np.full((1000, 1000, 3), 200, np.uint8)
    assert warp_image(image, crop_matrix(np.array([-5000.0, -5000.0, -4000.0, -4000.0]), 96, 1.25), 96).max() == 0
    corner = warp_image(image, crop_matrix(np.array([700.0, 700.0, 1300.0, 1300.0]), 96, 1.25), 96)
    assert corner[:40, :40].min() == 200 and corner[-40:, -40:].max() == 0
