from dataclasses import replace

import numpy as np
import pytest

from landmarkflow.layouts import LAYOUTS, get_layout


@pytest.mark.parametrize("name,points", [("68", 68), ("98", 98), ("29", 29), ("19", 19)])
def test_flip_twice_is_identity(name: str, points: int) -> None:
    layout = get_layout(name)
    pts = np.random.default_rng(0).uniform(0, 200, size=(3, points, 2))
    assert layout.num_points == points
    np.testing.assert_allclose(layout.flip_points(layout.flip_points(pts, 201), 201), pts)


def test_flip_mirrors_left_and_right_eye_corners_of_68() -> None:
    layout = get_layout("68")
    pts = np.zeros((68, 2))
    pts[36] = (10.0, 5.0)  # right eye outer corner
    flipped = layout.flip_points(pts, width=100)
    np.testing.assert_allclose(flipped[45], (89.0, 5.0))


def test_inter_ocular_and_inter_pupil_distances() -> None:
    layout = get_layout("68")
    pts = np.zeros((1, 68, 2))
    pts[0, 36:42] = (2.0, 1.0)
    pts[0, 42:48] = (14.0, 6.0)
    pts[0, 36], pts[0, 45] = (0.0, 0.0), (30.0, 40.0)
    assert layout.normalising_distance(pts)[0] == pytest.approx(50.0)
    right_centre = np.array([0.0 + 5 * 2.0, 0.0 + 5 * 1.0]) / 6
    left_centre = np.array([5 * 14.0 + 30.0, 5 * 6.0 + 40.0]) / 6
    expected = np.linalg.norm(left_centre - right_centre)
    assert layout.normalising_distance(pts, normaliser="inter_pupil")[0] == pytest.approx(expected)


def test_box_size_normaliser_needs_boxes() -> None:
    layout = get_layout("19")
    pts = np.zeros((1, 19, 2))
    assert layout.normalising_distance(pts, np.array([[0, 0, 40, 90]]))[0] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="needs the face boxes"):
        layout.normalising_distance(pts)


def test_unknown_layout_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown layout .21.*68, 98, 29, 19"):
        get_layout("21")
    assert set(LAYOUTS) == {"68", "98", "29", "19"}


def test_eye_line_is_the_roll_clockwise_on_screen() -> None:
    layout = get_layout("68")
    pts = np.zeros((2, 68, 2))
    pts[0, 36:42], pts[0, 42:48] = (10.0, 20.0), (30.0, 20.0)
    pts[1, 36:42], pts[1, 42:48] = (10.0, 20.0), (20.0, 30.0)  # the left eye lower in the image: clockwise
    np.testing.assert_allclose(layout.eye_line_deg(pts), [0.0, 45.0])


def test_a_layout_whose_eyes_do_not_mirror_is_refused() -> None:
    layout = get_layout("19")
    with pytest.raises(ValueError, match="right eye's points to the left's"):
        replace(layout, groups={**layout.groups, "right_eye": (6, 7, 8), "left_eye": (9, 10, 12)})


@pytest.mark.parametrize("eyes", [((), (9, 10, 11)), ((6, 7, 19), (9, 10, 11)), ((-1, 7, 8), (9, 10, 11))])
def test_eyes_must_be_points_of_the_layout(eyes: tuple) -> None:
    layout = get_layout("19")
    with pytest.raises(ValueError, match=r"each eye needs >= 1 point in 0\.\.18"):
        replace(layout, groups={**layout.groups, "right_eye": eyes[0], "left_eye": eyes[1]})


def test_eyes_must_name_groups_of_the_layout() -> None:
    with pytest.raises(ValueError, match=r"eyes name groups it does not have: \['pupils_right'\]"):
        replace(get_layout("29"), eyes=("pupils_right", "left_eye"))
