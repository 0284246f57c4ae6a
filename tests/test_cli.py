"""The CLI is the pipeline: each step's subcommand, run one after the other in a workdir, hands over through the
same result files as `run` and ends in the registry, and a step run too early says which step comes first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from landmarkflow import steps
from landmarkflow.cli import app
from landmarkflow.data.manifest import read_manifest
from landmarkflow.data.synthetic import synthesize
from landmarkflow.registry import CHALLENGER, CHAMPION, version_by_alias
from tests.stores import TrackingStore

CONFIG = "configs/hih_synthetic_tiny.yaml"
STEPS = ("train", "evaluate", "export", "gate", "register", "promote")


def _cli(*args: str | Path) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_each_step_by_hand_registers_a_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingested from a folder with its own data/ (not a DVC repo: the data is hashed, not versioned), by relative
    paths; the later steps run from another folder, on the paths the results hold."""
    config = Path(CONFIG).resolve()
    workdir = tmp_path / "run"
    synthesize(tmp_path / "data" / "faces", num_train=96, num_test=16, seed=3, progress=False)
    monkeypatch.chdir(tmp_path)

    ingested = _cli(
        "data", "ingest", "--dataset", "synthetic", "--root", "data/faces", "--workdir", "run", "--no-render"
    )
    assert "112 faces" in ingested.output and "0 file(s) not ingested" in ingested.output
    assert "content-sha256:" in ingested.output
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    _cli("data", "validate", "--workdir", workdir)
    _cli("train", "--config", config, "--workdir", workdir, "--epochs", "1")
    for step in STEPS[1:]:
        _cli(step, "--workdir", workdir)

    results = {step: json.loads((workdir / f"{step}.json").read_text()) for step in ("ingest", *STEPS)}
    assert results["train"]["manifest"] == results["ingest"]["manifest"] == str(workdir / "manifest.parquet")
    assert results["evaluate"]["run_id"] == results["train"]["run_id"] == results["gate"]["run_id"]
    # One epoch leaves near-flat heatmaps, twice over with the flip test: where two cells tie to float precision,
    # onnxruntime and PyTorch may pick neighbours for a point or two (a trained model's peaks leave no such ties).
    assert abs(results["export"]["parity_delta"]) <= 1e-3
    # One epoch cannot beat the mean shape 3x: the gate fails, the version is registered all the same, and
    # no alias moves.
    assert not results["gate"]["passed"] and "mean shape" in results["gate"]["reasons"]
    assert results["register"] == {"registered_name": "hih-synthetic", "version": "1", "challenger": False}
    assert not results["promote"]["promoted"] and "is not set" in results["promote"]["message"]
    assert version_by_alias("hih-synthetic", CHAMPION) is None and version_by_alias("hih-synthetic", CHALLENGER) is None
    tags = MlflowClient().get_model_version("hih-synthetic", "1").tags
    assert tags["gate"] == "failed" and tags["data_hash"] == results["ingest"]["data_hash"]


@pytest.mark.parametrize("step,missing", [("evaluate", "train"), ("gate", "train"), ("promote", "register")])
def test_a_step_run_too_early_names_the_step_to_run_first(tmp_path: Path, step: str, missing: str) -> None:
    result = CliRunner().invoke(app, [step, "--workdir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"no {missing} result here; run `landmarkflow {missing}`" in " ".join(result.output.split())


@pytest.mark.parametrize("command", ["train", "run"])
@pytest.mark.parametrize("option", ["--nproc", "--epochs"])
def test_nproc_or_epochs_below_one_is_refused_by_its_option(
    tmp_path: Path, command: str, option: str, isolated_tracking: TrackingStore
) -> None:
    result = CliRunner().invoke(app, [command, "--workdir", str(tmp_path), option, "0"])
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in " ".join(result.output.split())
    assert not any(tmp_path.iterdir()) and not isolated_tracking.written()


def test_a_real_faces_format_without_real_faces_is_refused_not_ignored(
    tmp_path: Path, isolated_tracking: TrackingStore
) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--workdir", str(tmp_path), "--real-dataset", "wflw"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert "--real-dataset wflw names the format of --real-faces, which was not given" in said
    assert not any(tmp_path.iterdir()) and not isolated_tracking.written()


def test_ingest_with_a_remote_versions_the_root_there_for_steps_elsewhere(tmp_path: Path) -> None:
    root, remote = tmp_path / "faces", tmp_path / "remote"
    synthesize(root, num_train=3, num_test=2, seed=3, progress=False)
    _cli("data", "ingest", "--dataset", "synthetic", "--root", root, "--workdir", tmp_path / "run", "--remote", remote)
    ingested = steps.IngestResult.load(tmp_path / "run" / "ingest.json")
    assert ingested.data_remote == str(remote) and ingested.data_hash.endswith(".dir")
    fetched = Path(steps.materialise_data(ingested, ["test"], tmp_path / "pod").root)
    frame = read_manifest(ingested.manifest)
    test_images = sorted(frame[frame["split"] == "test"]["image_path"])
    assert sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*") if p.is_file()) == test_images


def test_train_refuses_data_its_workdir_failed_to_validate(tmp_path: Path, isolated_tracking: TrackingStore) -> None:
    """As the pipeline stops a branch on failed validation; a verdict on another manifest says nothing."""
    root, workdir = tmp_path / "faces", tmp_path / "run"
    synthesize(root, num_train=4, num_test=2, seed=3, progress=False)
    _cli("data", "ingest", "--dataset", "synthetic", "--root", root, "--workdir", workdir, "--no-render")
    missing = sorted(root.rglob("*.jpg"))[0]
    missing.unlink()
    assert CliRunner().invoke(app, ["data", "validate", "--workdir", str(workdir)]).exit_code == 1

    refused = CliRunner().invoke(app, ["train", "--config", CONFIG, "--workdir", str(workdir), "--epochs", "1"])
    said = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "data validation failed on this data (image_exists; report" in said and "ingest it again" in said
    assert MlflowClient().get_experiment_by_name("landmarks/synthetic") is None  # no training run opened
    verdict = json.loads((workdir / "validate.json").read_text())
    assert not verdict["success"] and verdict["failed_checks"] == ["image_exists"]
