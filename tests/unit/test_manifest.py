from pathlib import Path

import numpy as np
import pytest

from landmarkflow.data.manifest import (
    FaceRecord,
    ManifestError,
    landmark_box,
    read_manifest,
    to_records,
    write_manifest,
)


def _record(sample_id: str = "a/b", path: str = "a/b.jpg", points: int = 68) -> FaceRecord:
    rng = np.random.default_rng(1)
    pts = rng.uniform(10, 90, size=(points, 2))
    return FaceRecord(sample_id, "synthetic", "train", path, 100, 120, landmark_box(pts), pts, np.ones(points), "68")


def test_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    records = [_record("x/1", "x/1.jpg"), _record("x/2", "x/2.png")]
    records[1].subsets = ["common", "full"]
    records[1].visible[3] = False
    back = to_records(read_manifest(write_manifest(records, tmp_path / "m.parquet")))
    for before, after in zip(records, back, strict=True):
        np.testing.assert_array_equal(before.landmarks, after.landmarks)
        np.testing.assert_array_equal(before.visible, after.visible)
        np.testing.assert_array_equal(before.bbox, after.bbox)
        assert (before.sample_id, before.subsets, before.width) == (after.sample_id, after.subsets, after.width)


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.jpg", "a/../../b.jpg"])
def test_paths_must_stay_inside_the_root(path: str) -> None:
    with pytest.raises(ManifestError, match="relative to the dataset root"):
        _record(path=path)


def test_point_count_must_match_layout() -> None:
    with pytest.raises(ManifestError, match=r"shape \(67, 2\), layout 68 expects \(68, 2\)"):
        _record(points=67)


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = write_manifest([_record()], tmp_path / "m.parquet")
    before = target.read_bytes()
    with pytest.raises(ManifestError):
        write_manifest(read_manifest(target).drop(columns=["bbox"]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.parquet"]
