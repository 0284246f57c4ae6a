"""The compiled pipeline is what a cluster runs: check its wiring, caching and resources."""

from pathlib import Path

import yaml
from kfp import compiler

from pipelines.landmarks import landmark_pipeline


def _compile(tmp_path: Path) -> dict:
    """The pipeline spec, with the Kubernetes platform spec (second YAML document) under 'platforms'."""
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(landmark_pipeline, package_path=str(path))
    spec, *platform = yaml.safe_load_all(path.read_text())
    return {**spec, "platforms": platform}


def _tasks(spec: dict, component: str) -> dict:
    return spec["components"][component]["dag"]["tasks"]


def test_every_step_is_wired_in_order(tmp_path: Path) -> None:
    spec = _compile(tmp_path)
    root = spec["root"]["dag"]["tasks"]
    assert {"ingest", "validate", "for-loop-1"} <= set(root)
    branch = _tasks(spec, "comp-landmark-model")
    assert set(branch) == {"train", "evaluate", "export", "gate", "register", "promote"}
    assert branch["gate"]["dependentTasks"] == ["evaluate", "export", "train"]
    assert branch["promote"]["dependentTasks"] == ["gate", "register"]
    assert "validate" in root["for-loop-1"]["dependentTasks"]


def test_decisions_and_side_effects_are_never_cached(tmp_path: Path) -> None:
    spec = _compile(tmp_path)
    root, branch = spec["root"]["dag"]["tasks"], _tasks(spec, "comp-landmark-model")
    for task in (root["ingest"], root["validate"], *(branch[n] for n in ("export", "gate", "register", "promote"))):
        assert task.get("cachingOptions", {}).get("enableCache") is not True, task["taskInfo"]["name"]


def test_training_asks_for_gpus_and_shared_memory(tmp_path: Path) -> None:
    spec = _compile(tmp_path)
    executor = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert executor["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    platform = yaml.safe_dump(spec.get("platforms", {}))
    assert "/dev/shm" in platform


def test_components_name_artifact_files_through_the_library(tmp_path: Path) -> None:
    executors = _compile(tmp_path)["deploymentSpec"]["executors"]
    code = {name: "\n".join(e["container"]["command"]) for name, e in executors.items()}
    assert "CHECKPOINT_FILE" in code["exec-evaluate"] and "CHECKPOINT_FILE" in code["exec-export"]
    assert "ONNX_FILE" in code["exec-register"]
    assert not [name for name, text in code.items() if '"model.' in text]


def test_schedules_need_six_cron_fields() -> None:
    import pytest

    from pipelines.cluster import check_cron

    assert check_cron("0 0 3 * * *") == "0 0 3 * * *"
    with pytest.raises(ValueError, match="has 5 fields; KFP needs 6"):
        check_cron("0 3 * * *")
