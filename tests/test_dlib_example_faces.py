"""tools/dlib_example_faces.py: dlib's imglab XML (0-based whole pixels) laid out as 300W crops that read back with
the same points, moved into each crop."""

import cv2
import numpy as np
import pytest

from landmarkflow.data.formats.w300 import read_300w, write_300w
from tools.dlib_example_faces import LANDMARK_FILES, crop_record, faces_in


def imglab_xml(faces: list[tuple[str, np.ndarray]]) -> str:
    boxes = "".join(
        f"<image file='{file}'><box top='0' left='0' width='40' height='40'>"
        + "".join(f"<part name='{i:02d}' x='{x:g}' y='{y:g}'/>" for i, (x, y) in reversed(list(enumerate(points))))
        + "</box></image>"
        for file, points in faces
    )
    return f"<?xml version='1.0'?><dataset><images>{boxes}</images></dataset>"


def test_faces_read_in_point_order_and_cropped_into_300w(tmp_path):
    rng = np.random.default_rng(0)
    points = np.round(rng.uniform(100, 140, (68, 2)))
    photo = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "group.png"), photo[..., ::-1])
    (tmp_path / LANDMARK_FILES[0]).write_text(imglab_xml([("group.png", points)]))
    (tmp_path / LANDMARK_FILES[1]).write_text(imglab_xml([]))

    [(file, [(side, read_points)])] = faces_in(tmp_path)
    assert (file, side) == ("group.png", 40.0)
    np.testing.assert_array_equal(read_points, points)  # the parts were written in reverse: sorted by name

    record, crop = crop_record(file, 0, side, read_points, photo)
    origin = np.floor(points.mean(axis=0) - 60).astype(int)
    np.testing.assert_array_equal(
        crop, photo[origin[1] : origin[1] + crop.shape[0], origin[0] : origin[0] + crop.shape[1]]
    )
    write_300w([record], tmp_path / "out", {record.sample_id: crop})
    [back] = read_300w(tmp_path / "out")
    assert (back.sample_id, back.split) == ("lfpw/testset/group_0", "test")
    np.testing.assert_allclose(back.landmarks, points - origin, atol=1e-6)


def test_a_face_without_68_points_names_its_file(tmp_path):
    (tmp_path / LANDMARK_FILES[0]).write_text(imglab_xml([("group.png", np.zeros((5, 2)))]))
    (tmp_path / LANDMARK_FILES[1]).write_text(imglab_xml([]))
    with pytest.raises(ValueError, match=r"training_with_face_landmarks\.xml: a face in group\.png has 5 points"):
        faces_in(tmp_path)
