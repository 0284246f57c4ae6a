"""Creating a TrainJob on the cluster and waiting for it, through the Kubernetes custom objects API.

The `kubeflow` SDK's TrainerClient builds its own TrainJob from a function or an image (and takes environment
values only, no Secret references), so the job `trainjob.spec` builds is created as it is, on the CRD
`trainer.kubeflow.org/v1alpha1` `trainjobs`. The step's service account needs create, get, patch and delete on it.

The job goes with the step: it is owned by the step's pod (`owner.pod_owner`), and SIGTERM during the wait deletes it
(`status.deleted_on_sigterm`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

from landmarkflow.trainjob.owner import shared_owners
from landmarkflow.trainjob.spec import NODE
from landmarkflow.trainjob.status import (
    DEFAULT_WAIT,
    DELETE_ON_SIGTERM_S,
    Outcome,
    WaitPolicy,
    deleted_on_sigterm,
    outcome,
    wait_for_trainjob,
)

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DELETE_WAIT_S = 120
"""How long an ended job of an earlier attempt may take to go away before it is created anew."""


def current_namespace() -> str:
    """The namespace of this pod, else of the kubeconfig's current context, else `default`."""
    if IN_CLUSTER_NAMESPACE.is_file():
        return IN_CLUSTER_NAMESPACE.read_text().strip()
    from kubernetes import config

    try:
        _, context = config.list_kube_config_contexts()
    except config.ConfigException:
        return "default"
    return context.get("context", {}).get("namespace") or "default"


def logs_command(name: str, namespace: str) -> str:
    """How to follow every node's log of the job (rank 0 is on whichever node the rendezvous put it)."""
    selector = f"jobset.sigs.k8s.io/jobset-name={name},jobset.sigs.k8s.io/replicatedjob-name={NODE}"
    return f"kubectl logs -n {namespace} -l {selector} --prefix --follow --max-log-requests 64"


def is_transient(exc: Exception) -> bool:
    """An API answer worth another try: no answer at all, 429 or a 5xx."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(exc, ApiException):
        return exc.status == 429 or (exc.status or 0) >= 500
    return isinstance(exc, (HTTPError, ConnectionError, TimeoutError))


def run_trainjob(job: TrainerV1alpha1TrainJob, policy: WaitPolicy = DEFAULT_WAIT) -> Outcome:
    """Create `job` and wait for it: TrainJobFailed with the job's reason when it fails; SIGTERM deletes it and exits.
    A job of that name that an earlier attempt created is waited for while it runs (and owned by this pod too, so
    that it outlives the earlier pod), and replaced when it has ended."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    namespace, name, body = current_namespace(), job.metadata.name, job.to_dict()

    def read() -> dict[str, Any]:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    _create(api, namespace, body, read)
    log.info("follow its logs with: %s", logs_command(name, namespace))

    def delete() -> None:
        """Deleting the job deletes its pods too (a custom resource's dependents go in the background by default)."""
        api.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _request_timeout=DELETE_ON_SIGTERM_S
        )

    with deleted_on_sigterm(f"{namespace}/{name}", delete):
        return wait_for_trainjob(f"{namespace}/{name}", read, is_transient, policy)


def _create(api: Any, namespace: str, body: dict[str, Any], read: Callable[[], dict[str, Any]]) -> None:
    """Create the job; one of that name that an earlier attempt created is left to run, co-owned by this pod, or
    replaced when it has ended."""
    from kubernetes.client.exceptions import ApiException

    name = body["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        log.info("TrainJob %s/%s created", namespace, name)
        return
    except ApiException as exc:
        if exc.status != 409:
            raise
    earlier = read()
    if outcome(earlier) is None:
        log.info("TrainJob %s/%s of an earlier attempt is still running; waiting for it", namespace, name)
        owners = shared_owners(earlier, body)
        if owners is not None:
            patch = {"metadata": {"ownerReferences": owners}}
            api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
        return
    log.info("TrainJob %s/%s of an earlier attempt has ended; creating it anew", namespace, name)
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    _wait_deleted(read, f"{namespace}/{name}")
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def _wait_deleted(read: Any, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + DELETE_WAIT_S
    while time.monotonic() < deadline:
        try:
            read()
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(2)
    raise TimeoutError(f"TrainJob {name}: deleted, but still there after {DELETE_WAIT_S} s")
