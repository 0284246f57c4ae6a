"""The very pipeline a cluster runs, executed by kfp.local's SubprocessRunner on tiny synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kfp import local
from mlflow.tracking import MlflowClient

from landmarkflow.data.dvc_remote import object_key
from landmarkflow.data.synthetic import synthesize
from pipelines.landmarks import make_pipeline

pytestmark = pytest.mark.slow


def _relaxed_config(tmp_path: Path, model: str, parity_tolerance: float) -> Path:
    """A tiny config with gates loose enough for one short epoch to be promoted: this test is about the
    wiring. An untrained model's heatmaps are nearly flat, so near-ties in their argmax may go one way
    in PyTorch and the other in onnxruntime (HIH 2.4e-4, LGCN 9.6e-2 NME measured); trained maps are peaked
    and agree."""
    raw = yaml.safe_load(Path(f"configs/{model}_synthetic_tiny.yaml").read_text())
    raw["gate"] = {"max_nme": 5.0, "parity_tolerance": parity_tolerance}
    raw.setdefault("eval", {})["overlay_count"] = 4
    path = tmp_path / f"{model}_tiny_relaxed.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_pipeline_runs_through_kfp_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two model branches at once, one thread each, as `make pipeline-run` runs them: both write to the same
    MLflow store and registry concurrently. Only ingest reads the data folder; every later step fetches
    what it reads from the DVC remote by the data hash."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root = tmp_path / "synthetic"
    synthesize(root, num_train=96, num_test=16, seed=5, progress=False)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "outputs"),
        raise_on_error=True,
    )
    configs = [str(_relaxed_config(tmp_path, model, tolerance)) for model, tolerance in (("hih", 0.05), ("lgcn", 1.0))]
    make_pipeline(parallelism=2)(
        dataset="synthetic",
        data_root=str(root),
        repo_root="",
        configs=configs,
        epochs=1,
        dvc_remote_url=str(tmp_path / "dvc-remote"),
    )
    client = MlflowClient()
    for name in ("hih-synthetic", "lgcn-synthetic"):
        version = client.get_model_version_by_alias(name, "champion")
        assert str(version.version) == "1"
        assert version.tags["gate"] == "passed"
        assert (tmp_path / "dvc-remote" / object_key(version.tags["data_hash"])).is_file()  # steps fetched it there
        run = client.get_run(version.run_id)
        assert {"test_nme", "baseline_nme", "onnx_parity_delta_nme", "gate_passed"} <= set(run.data.metrics)
    outputs = {p.name for p in (tmp_path / "outputs").rglob("*")}
    assert {"model.onnx", "model.pt"} <= outputs
