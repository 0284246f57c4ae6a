from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import numpy as np
import pytest

from landmarkflow.data.manifest import FaceRecord, ManifestError, read_manifest, to_records, write_manifest
from landmarkflow.geometry import landmark_box


def _record(sample_id: str = "a/b", path: str = "a/b.jpg", points: int = 68) -> FaceRecord:
    rng = np.random.default_rng(1)
    pts = rng.uniform(10, 90, size=(points, 2))
    return FaceRecord(sample_id, "synthetic", "train", path, 100, 120, landmark_box(pts), pts, np.ones(points), "68")


def test_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    second = _record("x/2", "x/2.png")
    hidden = np.ones(68, dtype=bool)
    hidden[3] = False
    records = [_record("x/1", "x/1.jpg"), replace(second, subsets=["common", "full"], visible=hidden)]
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


def test_a_record_cannot_be_changed_after_its_checks() -> None:
    record = _record()
    with pytest.raises(FrozenInstanceError):
        record.split = "test"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        record.visible = np.zeros(68, dtype=bool)  # type: ignore[misc]
    for array in (record.bbox, record.landmarks, record.visible):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    assert record.subsets == () and isinstance(replace(record, subsets=["full"]).subsets, tuple)


def test_a_record_does_not_share_the_arrays_it_was_built_from() -> None:
    points = np.random.default_rng(2).uniform(10, 90, size=(68, 2))
    visible = np.ones(68, dtype=bool)
    record = FaceRecord("a/b", "synthetic", "train", "a/b.jpg", 100, 120, landmark_box(points), points, visible, "68")
    points[0] = -1.0
    visible[0] = False
    assert record.landmarks[0, 0] >= 10 and record.visible[0]
    assert points.flags.writeable and visible.flags.writeable


def test_replace_checks_the_new_record_again() -> None:
    record = _record()
    with pytest.raises(ManifestError, match=r"visible has 67 flags, layout 68 expects 68"):
        replace(record, visible=np.ones(67, dtype=bool))
    with pytest.raises(ManifestError, match="relative to the dataset root"):
        replace(record, image_path="../outside.jpg")


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = write_manifest([_record()], tmp_path / "m.parquet")
    before = target.read_bytes()
    with pytest.raises(ManifestError):
        write_manifest(read_manifest(target).drop(columns=["bbox"]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.parquet"]


def test_written_files_get_the_mode_open_gives_not_mkstemps_0600(tmp_path: Path) -> None:
    """Atomic writes went through mkstemp, so a manifest or a dataset file was readable by its owner alone."""
    from landmarkflow.data.formats.w300 import write_pts

    (tmp_path / "plain").write_text("")
    expected = (tmp_path / "plain").stat().st_mode & 0o777
    written = [write_manifest([_record()], tmp_path / "m.parquet"), write_pts(tmp_path / "a.pts", np.zeros((68, 2)))]
    assert [oct(path.stat().st_mode & 0o777) for path in written] == [oct(expected)] * 2


def test_a_file_asked_for_as_private_is_written_0600(tmp_path: Path) -> None:
    """The local services' S3 credentials ask for 0o600: with the default mode they would be readable by others."""
    from landmarkflow.fileio import atomic_write_text

    atomic_write_text(tmp_path / "credentials.json", "{}", mode=0o600)
    assert oct((tmp_path / "credentials.json").stat().st_mode & 0o777) == oct(0o600)
