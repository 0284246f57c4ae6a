"""The very pipeline a cluster runs, executed by kfp.local's SubprocessRunner on tiny synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kfp import local
from mlflow.tracking import MlflowClient

from landmarkflow.data.dvc_remote import object_key
from landmarkflow.data.synthetic import synthesize
from landmarkflow.steps.checking_freshness import latest_freshness
from pipelines.landmarks import make_pipeline

pytestmark = pytest.mark.slow


def _relaxed_config(tmp_path: Path, model: str, parity_tolerance: float, max_nme: float = 5.0) -> Path:
    """A tiny config with gates loose enough for one short epoch to be promoted: this test is about the
    wiring. An untrained model's heatmaps are nearly flat, so near-ties in their argmax may go one way
    in PyTorch and the other in onnxruntime (HIH 2.4e-4, LGCN 9.6e-2 NME measured); trained maps are peaked
    and agree."""
    raw = yaml.safe_load(Path(f"configs/{model}_synthetic_tiny.yaml").read_text())
    raw["gate"] = {"max_nme": max_nme, "parity_tolerance": parity_tolerance}
    raw.setdefault("eval", {})["overlay_count"] = 4
    path = tmp_path / f"{model}_tiny_max_nme_{max_nme}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_scheduled_run_retrains_only_on_new_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three ticks of a schedule. The first trains and promotes two models in two branches at once, one thread
    each, as `make pipeline-run` runs them: both write to the same MLflow store and registry concurrently, only
    ingest reads the data folder, and every later step fetches what it reads from the DVC remote by the data hash.
    The second, on the same data, ends after the freshness check (no validation, no training) and says so in MLflow;
    the third, on new data, validates it against the champion's data, retrains, and leaves the champion where it was
    because the new version fails its gate."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    first_data, new_data = tmp_path / "synthetic", tmp_path / "synthetic-new"
    synthesize(first_data, num_train=96, num_test=16, seed=5, progress=False)
    synthesize(new_data, num_train=96, num_test=16, seed=6, progress=False)
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "outputs"), raise_on_error=True
    )
    client = MlflowClient()

    def tick(data: Path, *configs: Path) -> None:
        make_pipeline(parallelism=len(configs))(
            dataset="synthetic",
            data_root=str(data),
            repo_root="",
            configs=[str(config) for config in configs],
            epochs=1,
            dvc_remote_url=str(tmp_path / "dvc-remote"),
        )

    def runs(step: str) -> list:
        """The data experiment's runs of `step`, newest first."""
        experiment = client.get_experiment_by_name("data/synthetic").experiment_id
        return client.search_runs([experiment], f"tags.step = '{step}'", order_by=["attributes.start_time DESC"])

    tick(first_data, _relaxed_config(tmp_path, "hih", 0.05), _relaxed_config(tmp_path, "lgcn", 1.0))
    for name in ("hih-synthetic", "lgcn-synthetic"):
        version = client.get_model_version_by_alias(name, "champion")
        assert str(version.version) == "1"
        assert version.tags["gate"] == "passed"
        assert (tmp_path / "dvc-remote" / object_key(version.tags["data_hash"])).is_file()  # steps fetched it there
        run = client.get_run(version.run_id)
        assert {"test_nme", "baseline_nme", "onnx_parity_delta_nme", "gate_passed"} <= set(run.data.metrics)
    assert {"model.onnx", "model.pt"} <= {p.name for p in (tmp_path / "outputs").rglob("*")}
    champion = client.get_model_version_by_alias("hih-synthetic", "champion")
    assert len(runs("validate")) == 1

    tick(first_data, _relaxed_config(tmp_path, "hih", 0.05))
    assert latest_freshness("synthetic") == (
        f"nothing to retrain on {champion.tags['data_hash']} (hih-synthetic: no new data since v1)"
    )
    assert len(runs("validate")) == 1 and len(client.search_model_versions("name='hih-synthetic'")) == 1

    tick(new_data, _relaxed_config(tmp_path, "hih", 0.05, max_nme=1e-4))
    assert latest_freshness("synthetic").startswith(
        f"retraining 1 of 1 models on {client.get_model_version('hih-synthetic', '2').tags['data_hash']} "
        f"(hih-synthetic: new data: champion v1 was trained on {champion.tags['data_hash']})"
    )
    validated = runs("validate")[0]
    assert validated.data.tags["drift"] != "not measured" and "drift_max_ks" in validated.data.metrics
    assert client.get_model_version("hih-synthetic", "2").tags["gate"] == "failed"
    assert str(client.get_model_version_by_alias("hih-synthetic", "champion").version) == "1"
