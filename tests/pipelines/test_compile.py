"""The compiled pipeline is what a cluster runs: check its wiring, caching, resources, environment and that it carries
nothing of the machine that compiled it.

It is compiled once, as `make pipeline-compile` does (pipelines/compile.py in a fresh process), from a foreign working
directory, with a chosen image and Secret and with fake credentials in the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from landmarkflow.services import CREDENTIALS, SECRET_ENV, SECRET_NAME_ENV
from landmarkflow.threads import STEP_THREADS_ENV
from landmarkflow.trainjob.owner import POD_NAME_ENV, POD_UID_ENV

REPO = Path(__file__).resolve().parents[2]
IMAGE = "registry.example.com/team/landmarkflow-python:0123456789abcdef0123456789abcdef01234567"
SECRET = "team-landmarkflow"
FAKE_CREDENTIALS = {name: f"fake-{name.lower().replace('_', '-')}-3b1f9c" for name in CREDENTIALS}
SIDE_EFFECTS = ("ingest", "freshness", "validate", "export", "gate", "register", "promote")


@dataclass(frozen=True)
class Compiled:
    spec: dict[str, Any]
    kubernetes: dict[str, Any]
    text: str

    def tasks(self, component: str) -> dict[str, Any]:
        return self.spec["components"][component]["dag"]["tasks"]

    @property
    def root_tasks(self) -> dict[str, Any]:
        return self.spec["root"]["dag"]["tasks"]

    @property
    def branch_tasks(self) -> dict[str, Any]:
        return self.tasks("comp-landmark-model")

    @property
    def new_data_tasks(self) -> dict[str, Any]:
        """What runs only when the freshness check found a model with data to learn from."""
        return self.tasks("comp-condition-1")

    @property
    def executors(self) -> dict[str, Any]:
        return self.spec["deploymentSpec"]["executors"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compiled]:
    elsewhere = tmp_path_factory.mktemp("compile_from_here")
    output = elsewhere / "pipeline.yaml"
    env = {**os.environ, **FAKE_CREDENTIALS, "LANDMARKFLOW_IMAGE": IMAGE}
    env.pop(SECRET_NAME_ENV, None)
    command = [sys.executable, str(REPO / "pipelines" / "compile.py"), "--output", str(output), "--secret", SECRET]
    done = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    text = output.read_text()
    spec, platform = yaml.safe_load_all(text)
    yield Compiled(spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"], text)


def test_every_step_is_wired_in_order(compiled: Compiled) -> None:
    root, new_data, branch = compiled.root_tasks, compiled.new_data_tasks, compiled.branch_tasks
    assert set(root) == {"ingest", "freshness", "condition-1"}
    assert root["freshness"]["dependentTasks"] == ["ingest"]
    assert set(new_data) == {"validate", "for-loop-2"}
    assert set(branch) == {"gpu-requests", "train", "evaluate", "export", "gate", "register", "promote"}
    assert branch["gate"]["dependentTasks"] == ["evaluate", "export", "train"]
    assert branch["promote"]["dependentTasks"] == ["gate", "register"]
    assert new_data["for-loop-2"]["dependentTasks"] == ["validate"]


def test_the_run_ends_after_the_freshness_check_when_no_model_has_new_data(compiled: Compiled) -> None:
    """Validation and every model branch sit under a condition on freshness's verdict; the branches loop over the
    configs validation hands on (freshness's choice), not over every config given."""
    condition = compiled.root_tasks["condition-1"]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--freshness-Output'] == true"
    )
    loop = compiled.new_data_tasks["for-loop-2"]
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--validate-Output"
    inputs = compiled.spec["root"]["inputDefinitions"]["parameters"]
    assert (inputs["force_retrain"]["defaultValue"], inputs["force_retrain"]["parameterType"]) == (False, "BOOLEAN")


def test_decisions_and_side_effects_are_never_cached(compiled: Compiled) -> None:
    tasks = {**compiled.root_tasks, **compiled.new_data_tasks, **compiled.branch_tasks}
    for name in SIDE_EFFECTS:
        assert tasks[name].get("cachingOptions", {}).get("enableCache") is not True, name


def test_every_step_runs_in_the_image_and_gets_its_services_from_the_secret(compiled: Compiled) -> None:
    """Each Secret key is named as its variable, so `kubectl create secret` takes the variables' names as keys. The
    GPU requests are arithmetic on two parameters: that step reaches no service."""
    steps = ("train", "evaluate", "gpu-requests", *SIDE_EFFECTS)
    assert set(compiled.executors) == {f"exec-{step}" for step in steps}
    assert "exec-gpu-requests" not in compiled.kubernetes
    for name, executor in compiled.executors.items():
        assert executor["container"]["image"] == IMAGE, name
        if name == "exec-gpu-requests":
            continue
        assert {"name": SECRET_NAME_ENV, "value": SECRET} in executor["container"]["env"], name
        (from_secret,) = compiled.kubernetes[name]["secretAsEnv"]
        assert from_secret["secretName"] == SECRET and not from_secret["optional"], name
        assert {(k["secretKey"], k["envVar"]) for k in from_secret["keyToEnv"]} == {(v, v) for v in SECRET_ENV}, name


def test_training_retries_asks_for_gpus_and_shared_memory(compiled: Compiled) -> None:
    """A pre-empted training pod is retried with backoff; its GPUs are the gpu-requests step's `train`."""
    train = compiled.branch_tasks["train"]
    retry = train["retryPolicy"]
    assert (retry["maxRetryCount"], retry["backoffDuration"], retry["backoffFactor"]) == (3, "60s", 2)
    _asks_for_requested_gpus(compiled, "train")
    (shm,) = compiled.kubernetes["exec-train"]["emptyDirMounts"]
    assert (shm["mountPath"], shm["medium"]) == ("/dev/shm", "Memory")


def test_steps_that_compute_ask_for_cpus_and_compute_on_as_many_threads(compiled: Compiled) -> None:
    """A pod sees every core of its node: the step's threads are the CPUs its pod asks for, not the node's cores."""
    for step in ("train", "evaluate", "export"):
        container = compiled.executors[f"exec-{step}"]["container"]
        threads = [item["value"] for item in container["env"] if item["name"] == STEP_THREADS_ENV]
        assert threads == ["2"] and container["resources"]["resourceCpuRequest"] == "2", step


def _asks_for_requested_gpus(compiled: Compiled, step: str) -> None:
    """`step`'s pod asks for the GPUs that the branch's gpu-requests step answered for it, from the pipeline's `gpus`
    and `nodes`."""
    accelerator = compiled.executors[f"exec-{step}"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia.com/gpu"
    channel = f"pipelinechannel--gpu-requests-{step}"
    assert accelerator["resourceCount"] == f"{{{{$.inputs.parameters['{channel}']}}}}"
    task = compiled.branch_tasks[step]
    assert task["inputs"]["parameters"][channel] == {
        "taskOutputParameter": {"outputParameterKey": step, "producerTask": "gpu-requests"}
    }
    assert "gpu-requests" in task["dependentTasks"]
    requests = compiled.branch_tasks["gpu-requests"]["inputs"]["parameters"]
    assert requests == {name: {"componentInputParameter": name} for name in ("gpus", "nodes")}


def test_several_nodes_train_in_a_trainjob_of_the_steps_own_image(compiled: Compiled) -> None:
    """`nodes` (1 by default: training in the step's pod) reaches the train step with the image its TrainJob runs, and
    the pod's name and uid, from the downward API, with which it makes its pod the job's owner."""
    inputs = compiled.spec["root"]["inputDefinitions"]["parameters"]
    assert (inputs["nodes"]["defaultValue"], inputs["nodes"]["parameterType"]) == (1, "NUMBER_INTEGER")
    train = compiled.branch_tasks["train"]["inputs"]["parameters"]
    assert train["nodes"] == {"componentInputParameter": "nodes"}
    assert train["image"] == {"runtimeValue": {"constant": IMAGE}}
    fields = {item["name"]: item["fieldPath"] for item in compiled.kubernetes["exec-train"]["fieldPathAsEnv"]}
    assert fields == {POD_NAME_ENV: "metadata.name", POD_UID_ENV: "metadata.uid"}, "what owns the TrainJob"


def test_real_faces_reach_evaluate_by_version_and_are_off_by_default(compiled: Compiled) -> None:
    """Real faces are a folder version in the data's DVC remote, named by a pipeline parameter ("" = none)."""
    inputs = compiled.spec["root"]["inputDefinitions"]["parameters"]
    assert (inputs["real_faces"]["defaultValue"], inputs["real_faces_dataset"]["defaultValue"]) == ("", "300w")
    evaluate = compiled.branch_tasks["evaluate"]["inputs"]["parameters"]
    assert evaluate["real_faces"] == {"componentInputParameter": "real_faces"}
    assert evaluate["real_faces_dataset"] == {"componentInputParameter": "real_faces_dataset"}


def test_promote_serves_new_champions_only_when_given_an_image(compiled: Compiled) -> None:
    inputs = compiled.spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["serve_image"]["defaultValue"] == ""
    promote = compiled.branch_tasks["promote"]["inputs"]["parameters"]
    assert promote["serve_image"] == {"componentInputParameter": "serve_image"}


def test_export_runs_on_a_gpu_when_the_pipeline_has_gpus(compiled: Compiled) -> None:
    """TensorRT engines are built and compared where export runs, so it gets the branch's GPU type; how many is the
    gpu-requests step's `export`."""
    _asks_for_requested_gpus(compiled, "export")
    for step in ("evaluate", "gate", "register", "promote"):
        assert "accelerator" not in compiled.executors[f"exec-{step}"]["container"].get("resources", {}), step


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _defaults_and_constants(node: Any) -> Iterator[str]:
    """Every parameter default and every constant a task is given, anywhere in the spec."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("defaultValue", "constant"):
                yield from _strings(value)
            else:
                yield from _defaults_and_constants(value)
    elif isinstance(node, list):
        for item in node:
            yield from _defaults_and_constants(item)


def test_no_default_is_a_path_on_the_compiling_machine(compiled: Compiled) -> None:
    """A pod has none of the compiling machine's folders: relative paths resolve in the image's WORKDIR."""
    values = list(_defaults_and_constants(compiled.spec))
    assert "configs/hih_synthetic_tiny.yaml" in values
    assert not [v for v in values if v.startswith(("/", "~")) or "$HOME" in v or "${HOME}" in v]
    machine_paths = {str(REPO), str(Path.home()), str(Path(sys.executable).parent)} - {"/"}
    assert not [path for path in machine_paths if path in compiled.text]


def test_no_credential_reaches_the_yaml(compiled: Compiled) -> None:
    assert not [name for name, value in FAKE_CREDENTIALS.items() if value in compiled.text]


def test_components_name_artifact_files_through_the_library(compiled: Compiled) -> None:
    code = {name: "\n".join(e["container"]["command"]) for name, e in compiled.executors.items()}
    assert "CHECKPOINT_FILE" in code["exec-evaluate"] and "CHECKPOINT_FILE" in code["exec-export"]
    assert "ONNX_FILE" in code["exec-register"]
    assert not [name for name, text in code.items() if '"model.' in text]


def test_schedules_need_six_cron_fields() -> None:
    from pipelines.cluster import check_cron

    assert check_cron("0 0 3 * * *") == "0 0 3 * * *"
    with pytest.raises(ValueError, match="has 5 fields; KFP needs 6"):
        check_cron("0 3 * * *")


def test_a_cluster_run_needs_a_data_remote_for_its_steps_to_share_the_data() -> None:
    from pipelines.cluster import check_params

    with pytest.raises(ValueError, match=r'needs "dvc_remote_url" \(s3://bucket/prefix'):
        check_params({"gpus": 4})
    with pytest.raises(ValueError, match=r"a JSON object of pipeline parameters, got list"):
        check_params([1])
    for given in ({"dvc_remote_url": "s3://b/p"}, {"repo_root": "/app"}, {"data_git_rev": "v1"}):
        assert check_params(given) == given
