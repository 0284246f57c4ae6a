"""The train step under a resume key: what a retried task finds in the tracking store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow import steps
from landmarkflow.data.synthetic import synthesize
from landmarkflow.steps import training
from landmarkflow.tracking import experiment_name
from landmarkflow.train.checkpoint import load_state
from landmarkflow.workflow import ingest_step
from tests.fakes import DOTS_HIH

CONFIG = "configs/hih_synthetic_tiny.yaml"
SMALL = {
    **{f"model.{key}": DOTS_HIH[key] for key in ("channels", "hourglass_depth", "decimal_channels")},
    "train.epochs": 1,
    "train.batch_size": 2,
    "eval.batch_size": 8,
    "data.val_fraction": 0.25,
}


@pytest.fixture
def ingested(tmp_path: Path) -> steps.IngestResult:
    synthesize(tmp_path / "faces", num_train=8, num_test=2, seed=1, image_size=128, progress=False)
    return ingest_step(tmp_path / "ingest", "synthetic", tmp_path / "faces", synth=None)


def _runs(key: str) -> list[str]:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name("synthetic"))
    return [run.info.run_id for run in client.search_runs([experiment.experiment_id], f"tags.resume_key = '{key}'")]


def test_a_finished_training_with_the_key_is_returned_not_repeated(
    tmp_path: Path, ingested: steps.IngestResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = steps.train(CONFIG, ingested, tmp_path / "attempt1", SMALL, resume_key="job/task")

    def must_not_train(*args: object) -> None:
        raise AssertionError("a finished training was started again")

    monkeypatch.setattr(training, "_launch_training", must_not_train)
    again = steps.train(CONFIG, ingested, tmp_path / "attempt2", SMALL, resume_key="job/task")
    assert (again.run_id, again.seconds, again.final_val_nme) == (first.run_id, first.seconds, first.final_val_nme)
    assert _runs("job/task") == [first.run_id]
    want, got = load_state(Path(first.checkpoint))["model"], load_state(Path(again.checkpoint))["model"]
    assert Path(again.checkpoint).parent == tmp_path / "attempt2"
    assert all(torch.equal(want[name], got[name]) for name in want)


def test_the_key_never_resumes_another_config(tmp_path: Path, ingested: steps.IngestResult) -> None:
    first = steps.train(CONFIG, ingested, tmp_path / "one", SMALL, resume_key="job/task")
    other = steps.train(CONFIG, ingested, tmp_path / "two", {**SMALL, "train.lr": 1e-4}, resume_key="job/task")
    assert other.run_id != first.run_id and other.config_hash != first.config_hash
    assert sorted(_runs("job/task")) == sorted([first.run_id, other.run_id])


def test_a_malformed_key_is_refused_before_any_run_opens(tmp_path: Path, ingested: steps.IngestResult) -> None:
    with pytest.raises(ValueError, match=r"resume key '\{\{\$\.pipeline_job_uuid\}\}'"):
        steps.train(CONFIG, ingested, tmp_path / "out", SMALL, resume_key="{{$.pipeline_job_uuid}}")
    assert (
        MlflowClient().search_runs([MlflowClient().get_experiment_by_name("landmarks/synthetic").experiment_id]) == []
    )


def test_a_second_training_in_the_same_folder_trains_anew(tmp_path: Path, ingested: steps.IngestResult) -> None:
    """`landmarkflow train` twice in one workdir, on other data: the first run's last.pt is not resumed into the
    second, which would train no epoch and hand back the first run's weights as its own."""
    first = steps.train(CONFIG, ingested, tmp_path / "train", SMALL)
    want = load_state(Path(first.checkpoint))["model"]
    synthesize(tmp_path / "other", num_train=8, num_test=2, seed=2, image_size=128, progress=False)
    other = ingest_step(tmp_path / "ingest-other", "synthetic", tmp_path / "other", synth=None)
    second = steps.train(CONFIG, other, tmp_path / "train", SMALL)
    got = load_state(Path(second.checkpoint))["model"]
    assert second.run_id != first.run_id
    assert not all(torch.equal(want[name], got[name]) for name in want)


def _runs_in(dataset: str) -> list[str]:
    experiment = MlflowClient().get_experiment_by_name(experiment_name(dataset))
    return [] if experiment is None else [r.info.run_id for r in MlflowClient().search_runs([experiment.experiment_id])]


@pytest.mark.parametrize(
    "change,nproc,message",
    [
        ({"layout": "98"}, 1, r"faces in the 98-point layout, but the config 'hih_synthetic_tiny' trains on layout 68"),
        ({"counts": {"train": 8}}, 1, r"no faces in the 'test' split \(it holds \{'train': 8\}\)"),
        ({"counts": {"test": 2}}, 1, r"no faces in the 'train' split"),
        ({"counts": {}, "layout": ""}, 1, r"no faces in the 'train' and 'test' split \(it holds none\)"),
        ({}, 3, r"train.batch_size 2 is the global batch and must divide evenly over the 3 training processes"),
    ],
)
def test_data_the_config_cannot_train_on_is_refused_before_any_run_opens(
    tmp_path: Path, ingested: steps.IngestResult, change: dict, nproc: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        steps.train(CONFIG, replace(ingested, **change), tmp_path / "out", SMALL, nproc=nproc)
    assert _runs_in("synthetic") == [] and not (tmp_path / "out").exists()


def test_a_manifest_ingested_again_is_not_read_for_old_results(tmp_path: Path, ingested: steps.IngestResult) -> None:
    """Other data ingested into the workdir after training: evaluate and export would read the new manifest for the
    old model (beside the old root), and train on an old ingest result would read data it does not describe."""
    trained = steps.train(CONFIG, ingested, tmp_path / "train", SMALL)
    synthesize(tmp_path / "other", num_train=6, num_test=2, seed=2, image_size=128, progress=False)
    ingest_step(tmp_path / "ingest", "synthetic", tmp_path / "other", synth=None)

    for step in (steps.evaluate, steps.export):
        with pytest.raises(ValueError, match=f"written again after run {trained.run_id} trained on it"):
            step(trained, tmp_path / step.__name__)
    with pytest.raises(ValueError, match="written again after this ingest result read synthetic"):
        steps.train(CONFIG, ingested, tmp_path / "again", SMALL)


def test_the_key_never_resumes_a_run_on_other_data(tmp_path: Path, ingested: steps.IngestResult) -> None:
    """A finished run of the key would otherwise come back stamped with the new data's hash."""
    first = steps.train(CONFIG, ingested, tmp_path / "one", SMALL, resume_key="job/task")
    synthesize(tmp_path / "other", num_train=8, num_test=2, seed=2, image_size=128, progress=False)
    other = ingest_step(tmp_path / "ingest-other", "synthetic", tmp_path / "other", synth=None)
    with pytest.raises(ValueError, match=f"run {first.run_id} of this config trained on data {ingested.data_hash}"):
        steps.train(CONFIG, other, tmp_path / "two", SMALL, resume_key="job/task")
