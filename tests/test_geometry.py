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
