"""Logging the ONNX model: its signature comes from the file's deploy metadata, its requirements match MLflow's.
Lineage: the git commit comes from git in a checkout, and from the image where there is no .git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import onnx
import pytest
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from landmarkflow.registry import GIT_COMMIT_ENV, git_commit, log_onnx_model, onnx_pip_requirements
from tests.fakes import tiny_onnx_model


def test_logged_model_has_the_signature_of_its_deploy_metadata(tmp_path: Path) -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment("tiny", (tmp_path / "artifacts").as_uri()))
    uri = log_onnx_model(run.info.run_id, tiny_onnx_model(tmp_path / "model.onnx"))
    signature = Model.load(uri).signature.to_dict()
    assert '"shape": [-1, 3, 64, 64]' in signature["inputs"]
    assert '"shape": [-1, 68, 2]' in signature["outputs"]


def test_stated_requirements_are_what_mlflow_would_infer(tmp_path: Path) -> None:
    model = onnx.load(str(tiny_onnx_model(tmp_path / "model.onnx")))
    mlflow.onnx.save_model(model, str(tmp_path / "inferred"))
    mlflow.onnx.save_model(model, str(tmp_path / "stated"), pip_requirements=onnx_pip_requirements())
    for name in ("requirements.txt", "conda.yaml", "python_env.yaml"):
        assert (tmp_path / "stated" / name).read_text() == (tmp_path / "inferred" / name).read_text(), name


def test_the_commit_comes_from_git_in_a_checkout_and_from_the_image_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod runs in the image's WORKDIR, which has no .git: the image carries the commit it was built from."""
    checkout = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv(GIT_COMMIT_ENV, raising=False)
    assert git_commit(tmp_path) == "unknown"
    monkeypatch.setenv(GIT_COMMIT_ENV, "0123456789abcdef0123456789abcdef01234567")
    assert git_commit(tmp_path) == "0123456789abcdef0123456789abcdef01234567"
    assert git_commit(checkout).removesuffix("-dirty") == head.stdout.strip()
