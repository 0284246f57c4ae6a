"""`serve-manifest` prints an InferenceService that Kubernetes and KServe's v1beta1 CRD accept, and promote with a
rollout applies that manifest for the new champion (to a recorder here, not a cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, V1Container, V1ObjectMeta, V1PodSpec
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from landmarkflow import steps
from landmarkflow.alias_lock import lock_name
from landmarkflow.cli import app
from landmarkflow.registry import CHAMPION, PROMOTED_TAG, get_version, version_by_alias
from landmarkflow.rollback import roll_back
from landmarkflow.services import SECRET_ENV, SECRET_NAME_ENV
from landmarkflow.serving.kserve import Rollout, ServingRequest, inference_service
from tests.fakes import candidate

COMPONENT_FIELDS = {"minReplicas", "maxReplicas", "containerConcurrency"}
"""The ComponentExtensionSpec fields the manifest sets beside the PodSpec in spec.predictor (KServe's CRD)."""


def round_trip(value: dict[str, Any], kind: str) -> dict[str, Any]:
    """`value` read as the Kubernetes model `kind` and written back: any field the model lacks is dropped, any
    wrong type fails, so equality means Kubernetes reads it as written."""
    client = ApiClient()
    model = client.deserialize(SimpleNamespace(data=json.dumps(value)), kind)
    assert isinstance(model, {"V1PodSpec": V1PodSpec, "V1Container": V1Container, "V1ObjectMeta": V1ObjectMeta}[kind])
    return client.sanitize_for_serialization(model)


def check_inference_service(manifest: dict[str, Any], uri: str, image: str, secret: str) -> None:
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"} and set(manifest["spec"]) == {"predictor"}
    assert round_trip(manifest["metadata"], "V1ObjectMeta") == manifest["metadata"]
    predictor = manifest["spec"]["predictor"]
    pod = {key: value for key, value in predictor.items() if key not in COMPONENT_FIELDS}
    assert round_trip(pod, "V1PodSpec") == pod and set(pod) == {"containers"}
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"] and predictor["containerConcurrency"] > 0
    (container,) = pod["containers"]
    assert round_trip(container, "V1Container") == container
    assert container["name"] == "kserve-container" and container["image"] == image
    assert container["command"][:4] == ["landmarkflow", "serve", "--model", uri]
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": 8080}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs == {name: {"name": secret, "key": name} for name in SECRET_ENV}
    assert {"name": SECRET_NAME_ENV, "value": secret} in container["env"]
    assert {"name": "OMP_NUM_THREADS", "value": "2"} in container["env"]  # the default 2 CPUs, one worker
    assert set(container["resources"]) == {"requests", "limits"}


def test_serve_manifest_pins_the_champion_in_a_valid_inference_service(tmp_path: Path) -> None:
    first = candidate(tmp_path, "hih", 0.05, None)
    steps.promote(first.register(), first.gated)
    args = ["serve-manifest", "--model", "models:/hih-synthetic@champion", "--image", "registry.example/lf:abc"]
    printed = CliRunner().invoke(app, [*args, "--secret", "lf-services", "--max-replicas", "3"])
    assert printed.exit_code == 0, printed.output
    manifest = yaml.safe_load(printed.stdout)
    check_inference_service(manifest, "models:/hih-synthetic/1", "registry.example/lf:abc", "lf-services")
    assert manifest["metadata"]["name"] == "hih-synthetic"
    assert manifest["metadata"]["labels"]["landmarkflow/model-version"] == "1"
    assert manifest["spec"]["predictor"]["maxReplicas"] == 3

    missing = CliRunner().invoke(app, ["serve-manifest", "--model", "models:/hih-synthetic@staging"])
    assert missing.exit_code == 1 and "has no alias 'staging'" in " ".join(missing.output.split())
    unpinned = CliRunner().invoke(app, ["serve-manifest", "--model", "model.onnx"])
    assert unpinned.exit_code == 1 and "expected a registered version, models:/<name>/<version>" in " ".join(
        unpinned.output.split()
    )
    with pytest.raises(ValueError, match="no valid InferenceService name"):
        inference_service(ServingRequest("models:/___/2", "img"))
    with pytest.raises(ValueError, match="min_replicas <= max_replicas"):
        inference_service(ServingRequest("models:/hih-wflw/2", "img", min_replicas=2, max_replicas=1))


@pytest.mark.parametrize(
    ("cpu", "workers", "threads"),
    [("2", 1, 2), ("4", 2, 2), ("3", 2, 1), ("1.5", 1, 1), ("500m", 1, 1), ("8000m", 3, 2), (".5", 1, 1), ("3.", 1, 3)],
)
def test_each_server_process_computes_on_its_share_of_the_cpu_limit(cpu: str, workers: int, threads: int) -> None:
    manifest = inference_service(ServingRequest("models:/hih-wflw/2", "img", cpu=cpu, workers=workers))
    (container,) = manifest["spec"]["predictor"]["containers"]
    assert {"name": "OMP_NUM_THREADS", "value": str(threads)} in container["env"]
    assert container["resources"]["limits"]["cpu"] == cpu


@pytest.mark.parametrize("cpu", ["two", "0", "2 cores", "-1", "0m"])
def test_a_cpu_limit_that_is_no_quantity_is_refused(cpu: str) -> None:
    with pytest.raises(ValueError, match=f"cpu '{cpu}': expected a Kubernetes CPU quantity above zero"):
        inference_service(ServingRequest("models:/hih-wflw/2", "img", cpu=cpu))
    with pytest.raises(ValueError, match="workers 0: expected at least one server process"):
        inference_service(ServingRequest("models:/hih-wflw/2", "img", workers=0))


def holds_alias_lock() -> bool:
    """Whether a step holds (or waits for) the alias lock of hih-synthetic: its ticket exists."""
    return bool(MlflowClient().search_model_versions(f"name='{lock_name('hih-synthetic')}'"))


def test_promote_rolls_out_the_new_champion_only_when_it_is_promoted(tmp_path: Path) -> None:
    applied: list[tuple[dict[str, Any], str]] = []

    def record(manifest: dict[str, Any], namespace: str) -> str:
        assert holds_alias_lock(), "a manifest applied outside the alias lock can land after a later one"
        applied.append((manifest, namespace))
        return f"InferenceService {namespace}/{manifest['metadata']['name']} created"

    rollout = Rollout("registry.example/lf:abc", "lf-services", "serving", record)
    first = candidate(tmp_path, "hih", 0.05, None)
    promoted = steps.promote(first.register(), first.gated, rollout)
    assert promoted.promoted and "InferenceService serving/hih-synthetic created" in promoted.message
    ((manifest, namespace),) = applied
    assert namespace == "serving"
    check_inference_service(manifest, "models:/hih-synthetic/1", "registry.example/lf:abc", "lf-services")

    worse = candidate(tmp_path, "hih", 0.07, "1")
    worse.gated = steps.GateResult(
        worse.gated.run_id, "hih-synthetic", False, "worse than the champion", {}, "1", 0.0005
    )
    kept = steps.promote(worse.register(), worse.gated, rollout)
    assert not kept.promoted and len(applied) == 1
    assert version_by_alias("hih-synthetic", CHAMPION).version == "1"


def test_a_rollback_serves_the_restored_champion(tmp_path: Path) -> None:
    applied: list[dict[str, Any]] = []

    def record(manifest: dict[str, Any], namespace: str) -> str:
        assert holds_alias_lock(), "a manifest applied outside the alias lock can land after a later one"
        applied.append(manifest)
        return f"InferenceService {namespace}/{manifest['metadata']['name']} updated"

    for nme, seen in ((0.05, None), (0.04, "1")):
        made = candidate(tmp_path, "hih", nme, seen)
        assert steps.promote(made.register(), made.gated).promoted
    rollout = Rollout("registry.example/lf:abc", "lf-services", "serving", record)
    done = roll_back("hih-synthetic", "misses chins under beards", rollout=rollout)
    assert done.message.endswith(
        "(rolled back: misses chins under beards); InferenceService serving/hih-synthetic updated"
    )
    (manifest,) = applied
    check_inference_service(manifest, "models:/hih-synthetic/1", "registry.example/lf:abc", "lf-services")


def test_a_failed_rollout_fails_promote_after_champion_moved_and_tagged(tmp_path: Path) -> None:
    """The cluster refused the manifest: the step fails for a retry, and the version it made champion already says it
    was champion, which rollback and freshness read."""

    def refuse(manifest: dict[str, Any], namespace: str) -> str:
        raise RuntimeError("inferenceservices is forbidden")

    first = candidate(tmp_path, "hih", 0.05, None)
    registered = first.register()
    with pytest.raises(RuntimeError, match="forbidden"):
        steps.promote(registered, first.gated, Rollout("registry.example/lf:abc", apply=refuse))
    assert version_by_alias("hih-synthetic", CHAMPION).version == "1"
    assert get_version("hih-synthetic", "1").tags[PROMOTED_TAG] == "true"
    assert not holds_alias_lock()
