"""The KServe InferenceService that serves a registered version on a cluster: the project's image running
`landmarkflow serve` as a custom predictor, reaching MLflow through the pipeline's Secret.

The container and probes are built with the Kubernetes client's models (what a Pod accepts); the InferenceService
around them follows KServe's v1beta1 CRD: `spec.predictor` is a PodSpec (`containers`) plus the component's
`minReplicas`/`maxReplicas`/`containerConcurrency`. A custom predictor's container is named `kserve-container`, the
name KServe routes to. The manifest names a version, never an alias: rolling out a new champion is applying a
new manifest, which KServe turns into a rolling update, and a pod restarted later still serves what was rolled out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from landmarkflow.services import DEFAULT_SECRET, secret_env
from landmarkflow.serving.model_ref import REGISTRY_URI
from landmarkflow.threads import THREADS_ENV

if TYPE_CHECKING:
    from landmarkflow.alias_lock import LockFence

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceService"
CONTAINER = "kserve-container"
PORT = 8080
"""KServe's default port for a custom predictor's container."""
HEALTH_PATH = "/healthz"
MODEL_LABEL = "landmarkflow/registered-model"
VERSION_LABEL = "landmarkflow/model-version"
NAME_PATTERN = re.compile(r"[a-z]([-a-z0-9]{0,43}[a-z0-9])?")
"""A DNS-1035 label short enough for the names KServe derives from it (`<name>-predictor-...`)."""
CPU_QUANTITY = re.compile(r"(?P<cores>\d+\.?\d*|\.\d+)(?P<milli>m?)")
FENCE_ANNOTATION = "landmarkflow/alias-lock-fence"
"""The alias-lock fence (`alias_lock.LockFence`) of the promote or rollback that applied the InferenceService: an
apply under a lesser one (its holder's lease ran out and a later holder applied since) is refused."""
REPLACE_TRIES = 5
"""Reads and patches of an InferenceService that others keep changing in between (each a 409), before giving up."""


@dataclass(frozen=True)
class ServingRequest:
    """What one served version needs on a cluster."""

    model_uri: str
    """`models:/<name>/<version>`: the version the pods load."""
    image: str
    secret: str = DEFAULT_SECRET
    name: str | None = None
    """The InferenceService's name (default: the registered model's)."""
    cpu: str = "2"
    memory: str = "2Gi"
    min_replicas: int = 1
    max_replicas: int = 1
    workers: int = 1
    container_concurrency: int = 32
    """Requests a pod takes at once: the server batches them, so this is its batch, not a queue elsewhere."""


def service_name(registered_name: str) -> str:
    """A DNS-1035 name from a registered model's name (`hih-wflw` stays itself, `HIH_wflw` becomes `hih-wflw`)."""
    name = re.sub(r"[^a-z0-9-]+", "-", registered_name.lower()).strip("-")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{registered_name!r}: no valid InferenceService name (1-45 letters, digits, '-') from it")
    return name


def threads_per_worker(cpu: str, workers: int) -> int:
    """Each server process's threads: the pod's CPU limit shared by its workers, at least one. onnxruntime sizes its
    pool to the node's cores, not to a container's limit, so a 2-CPU pod on a large node would run a thread per
    node core against a quota of two; OMP_NUM_THREADS bounds it (runtime.open_session)."""
    match = CPU_QUANTITY.fullmatch(cpu)
    if match is None or float(match["cores"]) == 0:
        raise ValueError(f"cpu {cpu!r}: expected a Kubernetes CPU quantity above zero, such as 2, 1.5 or 500m")
    if workers < 1:
        raise ValueError(f"workers {workers}: expected at least one server process")
    cores = float(match["cores"]) / (1000 if match["milli"] else 1)
    return max(1, int(cores // workers))


def predictor_container(request: ServingRequest) -> dict[str, Any]:
    """The `kserve-container` (a Kubernetes Container): `landmarkflow serve` on PORT, its probes on /healthz, its
    resources, the Secret's environment and each worker's share of the CPU limit as its threads."""

    def probe(period_s: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": HEALTH_PATH, "port": PORT},
            "periodSeconds": period_s,
            "failureThreshold": failures,
            "timeoutSeconds": 5,
        }

    serve = ["landmarkflow", "serve", "--model", request.model_uri, "--host", "0.0.0.0", "--port", str(PORT)]
    resources = {"cpu": request.cpu, "memory": request.memory}
    return {
        "name": CONTAINER,
        "image": request.image,
        "command": [*serve, "--workers", str(request.workers)],
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "env": [
            *secret_env(request.secret),
            {"name": THREADS_ENV, "value": str(threads_per_worker(request.cpu, request.workers))},
        ],
        # Startup covers the model's download (up to 5 min); readiness takes a busy pod out of the Service for a
        # while; liveness restarts a server that stopped answering.
        "startupProbe": probe(10, 30),
        "readinessProbe": probe(10, 3),
        "livenessProbe": probe(20, 3),
        "resources": {"requests": resources, "limits": resources},
    }


def inference_service(request: ServingRequest) -> dict[str, Any]:
    """The InferenceService for `request`; ValueError naming the field that cannot be right."""
    match = REGISTRY_URI.fullmatch(request.model_uri)
    if match is None or not (match["version"] or "").isdigit():
        raise ValueError(f"model {request.model_uri!r}: expected a registered version, models:/<name>/<version>")
    if not 1 <= request.min_replicas <= request.max_replicas:
        raise ValueError(
            f"replicas {request.min_replicas}..{request.max_replicas}: expected 1 <= min_replicas <= max_replicas"
        )
    name = request.name or service_name(match["name"])
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"InferenceService name {name!r}: expected 1-45 lowercase letters, digits and '-'")
    labels = {"app.kubernetes.io/part-of": "landmarkflow", MODEL_LABEL: match["name"], VERSION_LABEL: match["version"]}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "predictor": {
                "minReplicas": request.min_replicas,
                "maxReplicas": request.max_replicas,
                "containerConcurrency": request.container_concurrency,
                "containers": [predictor_container(request)],
            }
        },
    }


def inference_service_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as YAML for `kubectl apply -f -`."""
    return yaml.safe_dump(manifest, sort_keys=False)


def apply_inference_service(manifest: dict[str, Any], namespace: str, api: Any = None) -> str:
    """Create the InferenceService, or replace the spec of the one of that name (KServe rolls its pods); returns
    what was done. `api`: a kubernetes CustomObjectsApi (default: in-cluster, else the kubeconfig's). The step's
    service account needs get, create and patch on `inferenceservices`."""
    from kubernetes.client.exceptions import ApiException

    api = api or _custom_objects_api()
    where = f"InferenceService {namespace}/{manifest['metadata']['name']}"
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
        done = f"{where} created"
    except ApiException as exc:
        if exc.status != 409:
            raise
        done = _replace(api, manifest, namespace, where)
    log.info(done)
    return done


def _replace(api: Any, manifest: dict[str, Any], namespace: str, where: str) -> str:
    """Patch the InferenceService as it was read (its resourceVersion, else 409 and read again), unless a later
    alias-lock holder applied it: a promote or rollback overtaken while it applied must not undo the later one's
    rollout (LeaseExpired)."""
    from kubernetes.client.exceptions import ApiException

    from landmarkflow.outages import LeaseExpired

    name = manifest["metadata"]["name"]
    ours, model = _fence_of(manifest, where), manifest["metadata"]["labels"][MODEL_LABEL]
    for _ in range(REPLACE_TRIES):
        current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        serving = current["metadata"].get("labels", {}).get(MODEL_LABEL, model)
        if serving != model:  # another registered model's, whose alias lock and fences are its own
            raise ValueError(
                f"{where} serves registered model {serving}, not {model}: give {model} a name of its own to serve"
            )
        theirs = _fence_of(current, where)
        if ours is not None and theirs is not None and theirs > ours:
            raise LeaseExpired(
                f"{where} was applied under alias-lock fence {theirs}, later than this step's {ours}: a later "
                f"promotion or rollback served its champion, and it stays"
            )
        metadata = {
            "labels": manifest["metadata"]["labels"],
            "annotations": manifest["metadata"].get("annotations", {}),
            "resourceVersion": current["metadata"]["resourceVersion"],
        }
        try:
            api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"metadata": metadata, "spec": manifest["spec"]}
            )
            return f"{where} updated"
        except ApiException as exc:
            if exc.status != 409:
                raise
            log.info("%s changed since it was read; reading it again", where)
    raise RuntimeError(f"{where} changed under each of {REPLACE_TRIES} replacements")


def _fence_of(manifest: dict[str, Any], where: str) -> LockFence | None:
    """The fence an InferenceService (or its manifest) was applied under; None where it carries none."""
    from landmarkflow.alias_lock import LockFence

    text = (manifest["metadata"].get("annotations") or {}).get(FENCE_ANNOTATION)
    try:
        return None if text is None else LockFence.parse(text)
    except ValueError as exc:
        raise ValueError(f"{where}: annotation {FENCE_ANNOTATION}: {exc}") from exc


def _custom_objects_api() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


@dataclass(frozen=True)
class Rollout:
    """Promote's and rollback's optional last act: serve the new champion on the cluster. `apply` takes the manifest
    and the namespace (None: this pod's, else the kubeconfig's) and says what it did."""

    image: str
    secret: str = DEFAULT_SECRET
    namespace: str | None = None
    apply: Callable[[dict[str, Any], str], str] = apply_inference_service

    def roll_out(self, registered_name: str, version: str, fence: LockFence | None) -> str:
        """Apply the InferenceService of `registered_name` v`version`, marked with the alias-lock holder's `fence`
        (FENCE_ANNOTATION; None: unmarked, replaced by any apply); returns what was done."""
        from landmarkflow.trainjob.submit import current_namespace

        manifest = inference_service(ServingRequest(f"models:/{registered_name}/{version}", self.image, self.secret))
        if fence is not None:
            manifest["metadata"].setdefault("annotations", {})[FENCE_ANNOTATION] = str(fence)
        return self.apply(manifest, self.namespace or current_namespace())
