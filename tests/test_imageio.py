from pathlib import Path

import numpy as np
import pytest

from landmarkflow.imageio import read_rgb, write_image


def test_write_image_picks_the_format_by_suffix_and_reads_back(tmp_path: Path) -> None:
    image = np.zeros((20, 30, 3), np.uint8)
    image[5:15, 10:20] = (255, 0, 0)  # blue in BGR
    written = write_image(tmp_path / "sheet.png", image)
    assert written == (tmp_path / "sheet.png").stat().st_size
    np.testing.assert_array_equal(read_rgb(tmp_path / "sheet.png"), image[..., ::-1])
    write_image(tmp_path / "sheet.jpg", image)
    assert (tmp_path / "sheet.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert np.abs(read_rgb(tmp_path / "sheet.jpg").astype(int) - image[..., ::-1]).mean() < 10


def test_write_image_refuses_a_format_it_cannot_encode_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"sheet\.xyz: OpenCV cannot encode an image as '\.xyz'"):
        write_image(tmp_path / "sheet.xyz", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
