"""Creating a TrainJob on the cluster and waiting for it, through the Kubernetes custom objects API.

The `kubeflow` SDK's TrainerClient builds its own TrainJob from a function or an image (and takes environment
values only, no Secret references), so the job `trainjob.spec` builds is created as it is, on the CRD
`trainer.kubeflow.org/v1alpha1` `trainjobs`. The step's service account needs create, get and delete on it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

from landmarkflow.trainjob.spec import NODE
from landmarkflow.trainjob.status import DEFAULT_WAIT, Outcome, WaitPolicy, outcome, wait_for_trainjob

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
    """Create `job` and wait for it: TrainJobFailed with the job's reason when it fails. A job of that name that an
    earlier attempt created is waited for while it runs, and replaced when it has ended."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    namespace, name, body = current_namespace(), job.metadata.name, job.to_dict()

    def read() -> dict[str, Any]:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        log.info("TrainJob %s/%s created", namespace, name)
    except ApiException as exc:
        if exc.status != 409:
            raise
        if outcome(read()) is None:
            log.info("TrainJob %s/%s of an earlier attempt is still running; waiting for it", namespace, name)
        else:
            log.info("TrainJob %s/%s of an earlier attempt has ended; creating it anew", namespace, name)
            api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            _wait_deleted(read, f"{namespace}/{name}")
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    log.info("follow its logs with: %s", logs_command(name, namespace))
    return wait_for_trainjob(f"{namespace}/{name}", read, is_transient, policy)


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
