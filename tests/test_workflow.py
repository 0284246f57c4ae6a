"""End to end on small synthetic data: first model promoted, a worse one not, bad data stopped at validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from landmarkflow.cli import app
from landmarkflow.data.synthetic import synthesize
from landmarkflow.data.validation.result import DataValidationError
from landmarkflow.registry import CHALLENGER, CHAMPION, version_by_alias
from landmarkflow.workflow import run_workflow

CONFIG = Path("configs/hih_synthetic_tiny.yaml")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough faces for validation to look at every kind of file, too few to train on."""
    root = tmp_path_factory.mktemp("data") / "synthetic"
    synthesize(root, num_train=320, num_test=48, seed=3, progress=False)
    return root


@pytest.fixture(scope="module")
def training_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A set on which the tiny HIH gets clearly past the mean shape in half a minute of CPU: it needs ~200
    optimiser steps before the heatmaps peak (10 epochs of 400 faces, 250 steps: test NME 11.9% against the mean
    shape's 28.6%)."""
    root = tmp_path_factory.mktemp("train_data") / "synthetic"
    synthesize(root, num_train=400, num_test=64, seed=3, progress=False)
    return root


def _overrides(root: Path, epochs: int) -> dict:
    return {
        "data.root": str(root),
        "train.epochs": epochs,
        "train.milestones": [8],
        "gate.max_nme": 0.5,
        "gate.min_baseline_ratio": None,
        "eval.overlay_count": 4,
    }


def _copy(root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "synthetic"
    shutil.copytree(root, target)
    return target


def test_first_model_is_promoted_and_a_worse_one_is_not(training_synthetic: Path, tmp_path: Path) -> None:
    first = run_workflow(CONFIG, tmp_path / "first", _overrides(training_synthetic, 10), synth=None)
    assert first.promote.promoted and first.register.version == "1"
    champion = version_by_alias("hih-synthetic", CHAMPION)
    assert champion.version == "1" and version_by_alias("hih-synthetic", CHALLENGER).version == "1"
    tags = MlflowClient().get_model_version("hih-synthetic", "1").tags
    assert {"data_hash", "git_commit", "config_hash", "test_nme", "checkpoint"} <= set(tags)
    assert float(tags["test_nme"]) == pytest.approx(first.evaluate.nme, rel=1e-5)
    assert first.evaluate.baseline_metrics["nme"] > first.evaluate.nme
    run_metrics = MlflowClient().get_run(first.evaluate.run_id).data.metrics
    assert run_metrics["test_nme_perturbed"] == pytest.approx(first.evaluate.perturbed["nme_perturbed"])
    assert first.evaluate.perturbed["baseline_nme_perturbed"] > first.evaluate.baseline_metrics["nme"]
    assert abs(first.export.parity_delta) <= 1e-4
    assert "skipped" in first.export.tensorrt

    untrained = {**_overrides(training_synthetic, 1), "train.lr": 1e-9}  # one epoch that barely moves a weight
    worse = run_workflow(CONFIG, tmp_path / "worse", untrained, synth=None)
    assert not worse.gate.passed and not worse.promote.promoted
    assert "worse" in worse.gate.reasons
    assert version_by_alias("hih-synthetic", CHAMPION).version == "1"
    assert MlflowClient().get_model_version("hih-synthetic", worse.register.version).tags["gate"] == "failed"
    assert "stays at v1" in worse.promote.message

    photo = tmp_path / "face.jpg"
    cv2.imwrite(str(photo), cv2.imread(str(next(training_synthetic.glob("helen/testset/*.jpg")))))
    for model in ("models:/hih-synthetic@champion", first.export.onnx_path):
        result = CliRunner().invoke(app, ["predict", "--model", model, str(photo), "--bbox", "40,40,200,210", "--json"])
        assert result.exit_code == 0, result.output
        face = json.loads(result.stdout.strip().splitlines()[-1])["faces"][0]
        assert np.asarray(face["landmarks"]).shape == (68, 2)


def _corrupt_pts_point_count(root: Path) -> str:
    pts = next(root.glob("helen/trainset/*.pts"))
    lines = pts.read_text().splitlines()
    lines = [line.replace("n_points: 68", "n_points: 67") for line in lines]
    del lines[3]
    pts.write_text("\n".join(lines) + "\n")
    return pts.name


def _corrupt_nan(root: Path) -> str:
    pts = next(root.glob("lfpw/trainset/*.pts"))
    lines = pts.read_text().splitlines()
    lines[5] = "nan 12.0"
    pts.write_text("\n".join(lines) + "\n")
    return pts.name


def _corrupt_far_point(root: Path) -> str:
    pts = next(root.glob("afw/*.pts"))
    lines = pts.read_text().splitlines()
    lines[10] = "5000.0 12.0"
    pts.write_text("\n".join(lines) + "\n")
    return pts.stem


def _corrupt_image(root: Path) -> str:
    image = next(root.glob("helen/testset/*.jpg"))
    image.write_bytes(b"not a jpeg at all")
    return image.name


def _leak_test_image_into_train(root: Path) -> str:
    image = next(root.glob("ibug/*.jpg"))
    for suffix in (".jpg", ".pts"):
        shutil.copyfile(image.with_suffix(suffix), root / "afw" / f"leaked{suffix}")
    return "leaked"


@pytest.mark.parametrize(
    "corrupt,check",
    [
        (_corrupt_pts_point_count, "point_count"),
        (_corrupt_nan, "no_nan"),
        (_corrupt_far_point, "points_inside_image"),
        (_corrupt_image, "image_opens"),
        (_leak_test_image_into_train, "split_leak"),
    ],
)
def test_bad_data_stops_at_validation_naming_file_and_check(
    small_synthetic: Path, tmp_path: Path, corrupt, check: str
) -> None:
    root = _copy(small_synthetic, tmp_path)
    culprit = corrupt(root)
    with pytest.raises(DataValidationError) as failure:
        run_workflow(CONFIG, tmp_path / "run", _overrides(root, 1), synth=None)
    message = str(failure.value)
    assert check in message and culprit in message, message
    client = MlflowClient()
    assert client.search_registered_models() == []
    experiment = client.get_experiment_by_name("data/synthetic")
    (run,) = client.search_runs([experiment.experiment_id], "tags.step = 'validate'")
    assert run.data.tags["validation"] == "failed" and check in run.data.tags["failed_checks"]
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert {"validation/validation.html", "validation/data_docs"} <= logged
