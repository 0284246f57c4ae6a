"""The TrainJob a user applies and the pipeline creates: accepted by the Trainer API models as it is printed, its
pods running the launcher's node command, its services coming from the Secret only, owned by the pod that creates it
when that pod names itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from landmarkflow import steps
from landmarkflow.cli import app
from landmarkflow.services import CREDENTIALS, SECRET_ENV, SECRET_NAME_ENV
from landmarkflow.train.inputs import INPUTS_DIR
from landmarkflow.train.launch import node_command
from landmarkflow.trainjob.owner import POD_NAME_ENV, POD_UID_ENV, pod_owner, shared_owners
from landmarkflow.trainjob.spec import RUN_LABEL, RUNTIME, TrainJobRequest, build_trainjob, trainjob_yaml

REPO = Path(__file__).resolve().parents[2]
FAKE_CREDENTIALS = {name: f"fake-{name.lower()}-7c2d" for name in CREDENTIALS}
REQUEST = TrainJobRequest(
    name="hih-0123456789ab",
    config_path="configs/hih_300w.yaml",
    run_id="0123456789abcdef0123456789abcdef",
    nodes=2,
    gpus_per_node=4,
    image="registry.example.com/landmarkflow-python:abc",
    secret="team-landmarkflow",
    overrides={"train.epochs": 3},
)


def parsed(text: str) -> TrainerV1alpha1TrainJob:
    """The printed YAML through the models; what they would drop (an unknown field) fails the comparison."""
    raw = yaml.safe_load(text)
    job = TrainerV1alpha1TrainJob.from_dict(raw)
    assert job.to_dict() == raw
    return job


def test_the_job_round_trips_through_the_trainer_models() -> None:
    job = parsed(trainjob_yaml(build_trainjob(REQUEST)))
    assert (job.api_version, job.kind, job.spec.runtime_ref.name) == (
        "trainer.kubeflow.org/v1alpha1",
        "TrainJob",
        RUNTIME,
    )
    trainer = job.spec.trainer
    assert (trainer.num_nodes, trainer.num_proc_per_node, trainer.image) == (2, 4, REQUEST.image)
    assert trainer.resources_per_node.to_dict()["limits"] == {"nvidia.com/gpu": "4"}
    assert trainer.command == node_command(REQUEST.config_path, REQUEST.run_id, REQUEST.overrides)
    assert job.metadata.labels[RUN_LABEL] == REQUEST.run_id
    mounts = job.to_dict()["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    assert "/dev/shm" in yaml.safe_dump(mounts)


def test_services_come_from_the_secret_by_reference_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    text = trainjob_yaml(build_trainjob(REQUEST))
    env = {item.name: item for item in parsed(text).spec.trainer.env}
    for name in SECRET_ENV:
        assert env[name].value is None, name
        assert env[name].value_from.secret_key_ref.to_dict() == {"name": REQUEST.secret, "key": name}
    assert env[SECRET_NAME_ENV].value == REQUEST.secret
    assert not any(value in text for value in FAKE_CREDENTIALS.values())
    assert not any(name.startswith("PET_") for name in env), "Trainer refuses jobs that set torchrun's variables"


def test_the_job_is_owned_by_the_pod_that_creates_it_exactly_when_the_pod_names_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The train step's pod gets its name and uid from the downward API; anywhere else the job has no owner."""
    monkeypatch.setenv(POD_NAME_ENV, "landmarkflow-x7k2p-train-3141592653")
    monkeypatch.setenv(POD_UID_ENV, "9b1d8f52-4c1e-4f57-9d0a-2b6f3c7e8a10")
    owned = parsed(trainjob_yaml(build_trainjob(replace(REQUEST, owner=pod_owner()))))
    assert [reference.to_dict() for reference in owned.metadata.owner_references] == [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "landmarkflow-x7k2p-train-3141592653",
            "uid": "9b1d8f52-4c1e-4f57-9d0a-2b6f3c7e8a10",
            "controller": False,
            "blockOwnerDeletion": False,
        }
    ]
    for missing in (POD_NAME_ENV, POD_UID_ENV):
        with monkeypatch.context() as half:
            half.delenv(missing)
            assert pod_owner() is None
            assert "ownerReferences" not in build_trainjob(replace(REQUEST, owner=pod_owner())).to_dict()["metadata"]


def test_a_retried_step_adds_its_pod_to_the_owners_of_the_job_it_waits_for() -> None:
    """Kubernetes deletes a job once all its owners are gone: the earlier attempt's pod alone must not take it."""
    first = pod_owner({POD_NAME_ENV: "train-1", POD_UID_ENV: "uid-1"})
    second = pod_owner({POD_NAME_ENV: "train-2", POD_UID_ENV: "uid-2"})
    running = build_trainjob(replace(REQUEST, owner=first)).to_dict()
    retried = build_trainjob(replace(REQUEST, owner=second)).to_dict()
    assert shared_owners(running, retried) == [first, second]
    assert shared_owners(running, running) is None
    assert shared_owners(running, build_trainjob(REQUEST).to_dict()) is None


def test_cpu_nodes_run_one_process_and_ask_for_no_gpu() -> None:
    job = build_trainjob(TrainJobRequest(**{**vars(REQUEST), "gpus_per_node": 0}))
    assert job.spec.trainer.num_proc_per_node == 1
    assert job.spec.trainer.resources_per_node is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("nodes", 1, "nodes=1: a TrainJob is for 2 or more"), ("name", "Hih_1", "TrainJob name 'Hih_1'")],
)
def test_bad_requests_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_trainjob(TrainJobRequest(**{**vars(REQUEST), field: value}))


def test_the_cli_prints_the_job_and_opens_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    manifest = tmp_path / "manifest.parquet"
    manifest.write_bytes(b"a manifest")
    ingested = steps.IngestResult(
        "300w",
        "68",
        "/data/300w",
        str(manifest),
        "0123456789abcdef0123456789abcdef.dir",
        {"train": 3, "test": 1},
        data_remote="s3://bucket/dvc",
        root_in_version="300w",
    )
    ingested.save(tmp_path / "ingest.json")
    args = [
        "trainjob",
        "--config",
        "configs/hih_300w.yaml",
        "--nodes",
        "2",
        "--gpus-per-node",
        "4",
        "--workdir",
        tmp_path,
    ]
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    job = parsed(result.stdout)
    run_id = job.metadata.labels[RUN_LABEL]
    assert job.spec.trainer.command == node_command("configs/hih_300w.yaml", run_id, {})
    stored = {Path(item.path).name for item in MlflowClient().list_artifacts(run_id, INPUTS_DIR)}
    assert stored == {"ingest.json", "manifest.parquet"}
