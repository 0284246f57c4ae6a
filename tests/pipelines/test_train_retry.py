"""A pre-empted training pod is retried, and every attempt gets the same resume key."""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from landmarkflow.train.durable import check_resume_key
from pipelines.landmarks import TRAIN_RETRIES, landmark_pipeline


def test_train_is_retried_with_backoff_for_as_long_as_a_training_takes(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(landmark_pipeline, package_path=str(path))
    task = next(yaml.safe_load_all(path.read_text()))["components"]["comp-landmark-model"]["dag"]["tasks"]["train"]
    policy = task["retryPolicy"]
    assert policy["maxRetryCount"] == TRAIN_RETRIES >= 3
    assert int(policy["backoffDuration"].removesuffix("s")) >= 60
    assert int(policy["backoffMaxDuration"].removesuffix("s")) >= 2 * 24 * 3600  # Argo's deadline for all attempts
    # Whole-value placeholders: the backend substitutes nothing inside a longer string.
    parameters = task["inputs"]["parameters"]
    assert parameters["pipeline_job_id"]["runtimeValue"]["constant"] == dsl.PIPELINE_JOB_ID_PLACEHOLDER
    assert parameters["pipeline_task_id"]["runtimeValue"]["constant"] == dsl.PIPELINE_TASK_ID_PLACEHOLDER


def test_a_placeholder_left_unsubstituted_is_no_resume_key() -> None:
    assert check_resume_key("12716762/66909321") == "12716762/66909321"
    assert check_resume_key("3f2b9c1e-5d7a-4e8b-9c0d-1a2b3c4d5e6f/42")
    with pytest.raises(ValueError, match="resume key"):
        check_resume_key(f"{dsl.PIPELINE_JOB_ID_PLACEHOLDER}/{dsl.PIPELINE_TASK_ID_PLACEHOLDER}")
