import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from landmarkflow.data.validation.images import probe_image
from landmarkflow.imageio import read_rgb, write_image
from landmarkflow.serving.uploads import Limits, UploadError, decode_image


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


def test_a_truncated_jpeg_is_refused_alike_by_predict_the_server_and_data_validation(tmp_path: Path) -> None:
    """OpenCV's `imread` would return the cut file's picture part grey; every reader here decodes through one
    `decode_bgr`, which refuses it."""
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    whole = cv2.imencode(".jpg", noise)[1].tobytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    assert cv2.imread(str(cut), cv2.IMREAD_COLOR) is not None  # what the readers no longer take
    with pytest.raises(OSError, match=r"cut\.jpg: cannot read image \(truncated"):
        read_rgb(cut)
    with pytest.raises(UploadError, match="OpenCV cannot decode") as refused:
        decode_image(cut.read_bytes(), Limits())
    assert refused.value.status == 400
    assert not probe_image(cut).opens
    (tmp_path / "whole.jpg").write_bytes(whole)
    assert read_rgb(tmp_path / "whole.jpg").shape == (128, 128, 3) and probe_image(tmp_path / "whole.jpg").opens


def test_an_image_too_large_for_opencv_or_no_image_at_all_is_an_error_naming_the_file(tmp_path: Path) -> None:
    """A PNG whose header claims 40000 x 40000 pixels makes OpenCV raise rather than answer None: still the file's
    own error, so `predict` goes on to the next image. A file of no image format is refused by its signature."""
    png = bytearray(cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes())
    png[16:24] = struct.pack(">II", 40000, 40000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))  # the IHDR chunk's CRC, over its type and data
    (tmp_path / "huge.png").write_bytes(bytes(png))
    with pytest.raises(OSError, match=r"huge\.png: cannot read image \(truncated, too large"):
        read_rgb(tmp_path / "huge.png")
    assert not probe_image(tmp_path / "huge.png").opens
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(1000))
    with pytest.raises(OSError, match=r"clip\.mp4: cannot read image"):
        read_rgb(tmp_path / "clip.mp4")
