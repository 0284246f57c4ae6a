"""A step elsewhere can only fetch data that ingest pushed to a remote; without one it says what to give."""

from __future__ import annotations

from pathlib import Path

import pytest

from landmarkflow import steps


def test_data_pushed_nowhere_cannot_be_fetched(tmp_path: Path) -> None:
    ingested = steps.IngestResult("synthetic", "68", str(tmp_path), "manifest.parquet", "manifest-sha256:ab", {})
    with pytest.raises(
        ValueError, match=r"manifest\.parquet: ingest pushed the data to no DVC remote .* dvc_remote_url"
    ):
        steps.materialise_data(ingested, ["test"], tmp_path / "pod")
