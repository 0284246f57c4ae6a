"""`serve-manifest` prints an InferenceService that Kubernetes and KServe's v1beta1 CRD accept, and promote with a
rollout applies that manifest for the new champion: to a recorder, or to an in-memory stand-in for the API server
that keeps its resourceVersion rule, not to a cluster."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, V1Container, V1ObjectMeta, V1PodSpec
from kubernetes.client.exceptions import ApiException
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from landmarkflow import steps
from landmarkflow.alias_lock import LockFence, lock_name
from landmarkflow.cli import app
from landmarkflow.outages import LeaseExpired
from landmarkflow.registry import CHAMPION, PROMOTED_TAG, get_version, version_by_alias
from landmarkflow.rollback import roll_back
from landmarkflow.services import SECRET_ENV, SECRET_NAME_ENV
from landmarkflow.serving.kserve import (
    FENCE_ANNOTATION,
    MODEL_LABEL,
    REPLACE_TRIES,
    Rollout,
    ServingRequest,
    apply_inference_service,
    inference_service,
)
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
    nameless = CliRunner().invoke(app, ["serve-manifest", "--model", "models:/hih-synthetc@champion"])
    assert nameless.exit_code == 1 and "no registered model 'hih-synthetc' with a version in" in " ".join(
        nameless.output.split()
    )
    second = candidate(tmp_path, "hih", 0.09, None)  # registered and not promoted: the newest version all the same
    second.register()
    newest = CliRunner().invoke(app, ["serve-manifest", "--model", "models:/hih-synthetic/latest"])
    assert newest.exit_code == 0, newest.output
    assert yaml.safe_load(newest.stdout)["metadata"]["labels"]["landmarkflow/model-version"] == "2"
    with pytest.raises(ValueError, match="expected a registered version"):
        inference_service(ServingRequest("models:/hih-synthetic/latest", "img"))
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


class InferenceServices:
    """The CustomObjectsApi calls `apply_inference_service` makes, kept in memory with the API server's rules that
    it relies on: a create of an existing name and a patch naming another resourceVersion are each a 409, and a
    patch merges (RFC 7386). `between` runs once, after the next read: another writer changing the object."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes = 0
        self.between: Callable[[], None] | None = None

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict
    ) -> None:
        key = (namespace, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self._write(key, copy.deepcopy(body))

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict:
        read = copy.deepcopy(self.objects[(namespace, name)])
        if self.between is not None:
            change, self.between = self.between, None
            change()
        return read

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: dict
    ) -> None:
        current = self.objects[(namespace, name)]
        expected = body["metadata"].get("resourceVersion")
        if expected is not None and expected != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        self._write((namespace, name), merge_patch(copy.deepcopy(current), body))

    def _write(self, key: tuple[str, str], body: dict[str, Any]) -> None:
        self.writes += 1
        body["metadata"]["resourceVersion"] = str(self.writes)
        self.objects[key] = body

    def served(self, name: str = "hih-synthetic") -> tuple[str, str | None]:
        """The model URI the InferenceService serves, and the fence it was applied under."""
        service = self.objects[("serving", name)]
        fence = service["metadata"].get("annotations", {}).get(FENCE_ANNOTATION)
        return service["spec"]["predictor"]["containers"][0]["command"][3], fence


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    target = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def fenced_manifest(version: str, fence: LockFence) -> dict[str, Any]:
    manifest = inference_service(ServingRequest(f"models:/hih-synthetic/{version}", "registry.example/lf:abc"))
    manifest["metadata"]["annotations"] = {FENCE_ANNOTATION: str(fence)}
    return manifest


def test_each_promotion_serves_its_champion_under_a_greater_fence(tmp_path: Path) -> None:
    api = InferenceServices()
    rollout = Rollout(
        "registry.example/lf:abc", apply=lambda m, ns: apply_inference_service(m, ns, api), namespace="serving"
    )
    fences = []
    for nme, seen in ((0.05, None), (0.04, "1")):
        made = candidate(tmp_path, "hih", nme, seen)
        assert steps.promote(made.register(), made.gated, rollout).promoted
        uri, fence = api.served()
        fences.append(LockFence.parse(fence))
    assert uri == "models:/hih-synthetic/2" and fences[0] < fences[1]


def test_an_apply_overtaken_by_a_later_holder_leaves_its_rollout() -> None:
    api = InferenceServices()
    apply_inference_service(fenced_manifest("3", LockFence(1000, 7)), "serving", api)
    with pytest.raises(LeaseExpired, match=r"applied under alias-lock fence 1000\.7, later than this step's 1000\.5"):
        apply_inference_service(fenced_manifest("2", LockFence(1000, 5)), "serving", api)
    assert api.served() == ("models:/hih-synthetic/3", "1000.7") and api.writes == 1


@pytest.mark.parametrize("earlier", [LockFence(1000, 7), LockFence(1000, 8)])
def test_an_apply_replaces_a_rollout_of_an_earlier_or_the_same_fence(earlier: LockFence) -> None:
    api = InferenceServices()
    apply_inference_service(fenced_manifest("3", earlier), "serving", api)
    done = apply_inference_service(fenced_manifest("4", LockFence(1000, 8)), "serving", api)
    assert done == "InferenceService serving/hih-synthetic updated"
    assert api.served() == ("models:/hih-synthetic/4", "1000.8")


def test_a_lock_made_anew_outranks_the_tickets_of_the_one_before() -> None:
    api = InferenceServices()
    apply_inference_service(fenced_manifest("3", LockFence(1000, 40)), "serving", api)
    apply_inference_service(fenced_manifest("4", LockFence(2000, 1)), "serving", api)
    assert api.served() == ("models:/hih-synthetic/4", "2000.1")


def test_a_later_rollout_between_read_and_patch_is_read_again_and_kept() -> None:
    api = InferenceServices()
    apply_inference_service(fenced_manifest("3", LockFence(1000, 4)), "serving", api)
    api.between = lambda: apply_inference_service(fenced_manifest("5", LockFence(1000, 9)), "serving", api)
    with pytest.raises(LeaseExpired, match=r"later than this step's 1000\.6"):
        apply_inference_service(fenced_manifest("4", LockFence(1000, 6)), "serving", api)
    assert api.served() == ("models:/hih-synthetic/5", "1000.9")


@pytest.mark.parametrize("text", ["", "12", "a.3", "1.2.3", "-1.2"])
def test_a_fence_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="no alias-lock fence"):
        LockFence.parse(text)


def test_an_apply_replaces_an_inference_service_applied_without_a_fence() -> None:
    api = InferenceServices()
    unfenced = fenced_manifest("3", LockFence(1000, 7))
    del unfenced["metadata"]["annotations"]  # as `serve-manifest | kubectl apply` makes it
    apply_inference_service(unfenced, "serving", api)
    apply_inference_service(fenced_manifest("4", LockFence(1000, 2)), "serving", api)
    assert api.served() == ("models:/hih-synthetic/4", "1000.2")


def test_an_inference_service_of_another_registered_model_is_left_alone() -> None:
    api = InferenceServices()
    other = fenced_manifest("3", LockFence(1000, 7))
    other["metadata"]["labels"][MODEL_LABEL] = "hih_synthetic"  # another model, the same service name
    apply_inference_service(other, "serving", api)
    with pytest.raises(ValueError, match="serves registered model hih_synthetic, not hih-synthetic"):
        apply_inference_service(fenced_manifest("4", LockFence(5000, 1)), "serving", api)
    assert api.writes == 1


def test_a_fence_annotation_that_is_none_is_named() -> None:
    api = InferenceServices()
    broken = fenced_manifest("3", LockFence(1000, 7))
    broken["metadata"]["annotations"][FENCE_ANNOTATION] = "v7"
    apply_inference_service(broken, "serving", api)
    with pytest.raises(ValueError, match=rf"serving/hih-synthetic: annotation {FENCE_ANNOTATION}: 'v7' is no"):
        apply_inference_service(fenced_manifest("4", LockFence(1000, 8)), "serving", api)


def test_an_inference_service_changed_under_every_replacement_fails_the_apply() -> None:
    api = InferenceServices()
    apply_inference_service(fenced_manifest("3", LockFence(1000, 4)), "serving", api)

    def meddle() -> None:  # another writer, each time between the read and the patch
        api.objects[("serving", "hih-synthetic")]["metadata"]["resourceVersion"] += "'"
        api.between = meddle

    api.between = meddle
    with pytest.raises(RuntimeError, match=f"changed under each of {REPLACE_TRIES} replacements"):
        apply_inference_service(fenced_manifest("4", LockFence(1000, 6)), "serving", api)
    assert api.served() == ("models:/hih-synthetic/3", "1000.4")
