"""Who owns a TrainJob: the pipeline's train step makes its own pod the owner of the job it creates, so that
Kubernetes deletes the job, and with it the nodes' pods, when the step's pod is deleted (a cancelled run).

Light on purpose (no Kubernetes models): the pipeline's definition imports the variables' names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

POD_NAME_ENV, POD_UID_ENV = "LANDMARKFLOW_POD_NAME", "LANDMARKFLOW_POD_UID"
"""The pod's own name and uid, which the pipeline gives the train step through the downward API
(pipelines/landmarks.py): what an owner reference to that pod needs."""


def pod_owner(env: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """An owner reference to the pod this process runs in, from POD_NAME_ENV and POD_UID_ENV; None outside such a pod.
    Neither controller (Trainer's controller manages the job) nor blocking the pod's deletion, which would need
    permission to update pods' finalizers."""
    name, uid = env.get(POD_NAME_ENV), env.get(POD_UID_ENV)
    if not name or not uid:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": name,
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": False,
    }


def shared_owners(running: Mapping[str, Any], job: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The owner references of a `running` job that a retried step waits for, plus the ones its own `job` would have
    had (its pod); None when nothing is new. Kubernetes deletes a job once all its owners are gone, so the job then
    outlives the earlier attempt's pod."""
    owners = list(running["metadata"].get("ownerReferences", []))
    known = {owner["uid"] for owner in owners}
    new = [owner for owner in job["metadata"].get("ownerReferences", []) if owner["uid"] not in known]
    return [*owners, *new] if new else None
