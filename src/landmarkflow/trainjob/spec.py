"""The Kubeflow Trainer TrainJob that trains one config on several nodes, built on the `kubeflow-trainer-api` models.

The job runs on the `torch-distributed` ClusterTrainingRuntime, which starts `numNodes` pods and tells each its
place through PET_* variables; every pod runs `launch.node_command` in the project's image. A pod gets its services
only from the Kubernetes Secret (each key under its own variable's name, through `valueFrom`: no value is ever
written into the job), its data from the DVC remote by hash and its inputs from the training's MLflow run.
A job the pipeline's train step submits is owned by that step's pod, so that Kubernetes deletes it, and its nodes,
when the pod goes (a cancelled run).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

from landmarkflow.services import DEFAULT_SECRET, secret_env
from landmarkflow.train.launch import node_command

API_VERSION = "trainer.kubeflow.org/v1alpha1"
KIND = "TrainJob"
RUNTIME = "torch-distributed"
"""The ClusterTrainingRuntime Kubeflow Trainer installs for torchrun jobs."""
NODE = "node"
"""The runtime's ReplicatedJob of training nodes, and its trainer container (Trainer's constants.Node)."""
GPU_RESOURCE = "nvidia.com/gpu"
SHM_SIZE = "16Gi"
"""DataLoader workers share batches through /dev/shm, which is 64 MiB in a default pod."""
PATCH_MANAGER = "landmarkflow"
RUN_LABEL = "landmarkflow/mlflow-run-id"
"""The job's label naming the MLflow run it trains in: `kubectl get trainjobs -l landmarkflow/mlflow-run-id=<id>`."""
NAME_PATTERN = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")
"""A DNS-1035 label short enough that the pod names Trainer derives from it stay within 63 characters."""


@dataclass(frozen=True)
class TrainJobRequest:
    """What one multi-node training needs on a cluster."""

    name: str
    config_path: str
    """The experiment config as the image holds it (relative to the image's working directory, or absolute)."""
    run_id: str
    """The MLflow run holding the inputs (`train.inputs`); it receives the metrics, checkpoints and model.pt."""
    nodes: int
    gpus_per_node: int
    """0 trains on CPUs, one process per node."""
    image: str
    secret: str = DEFAULT_SECRET
    overrides: Mapping[str, Any] = field(default_factory=dict)
    owner: Mapping[str, Any] | None = None
    """An ownerReferences entry (`owner.pod_owner`): Kubernetes garbage-collects the job when its owner is deleted."""


def trainjob_name(model: str, run_id: str) -> str:
    """The job's name: the model and the run, so that a retried step finds the job its earlier attempt created."""
    return f"{model.lower()}-{run_id[:12].lower()}"


def build_trainjob(request: TrainJobRequest) -> TrainerV1alpha1TrainJob:
    """The TrainJob for `request`; ValueError naming the field that cannot be right."""
    if not NAME_PATTERN.fullmatch(request.name):
        raise ValueError(f"TrainJob name {request.name!r}: expected 1-40 lowercase letters, digits and '-'")
    if request.nodes < 2:
        raise ValueError(f"nodes={request.nodes}: a TrainJob is for 2 or more nodes; one node trains in its step")
    if request.gpus_per_node < 0:
        raise ValueError(f"gpus_per_node={request.gpus_per_node}: expected 0 (CPUs) or more")
    trainer: dict[str, Any] = {
        "image": request.image,
        "command": node_command(request.config_path, request.run_id, request.overrides),
        "numNodes": request.nodes,
        "numProcPerNode": max(request.gpus_per_node, 1),
        "env": secret_env(request.secret),
    }
    if request.gpus_per_node:
        gpus = str(request.gpus_per_node)
        trainer["resourcesPerNode"] = {"requests": {GPU_RESOURCE: gpus}, "limits": {GPU_RESOURCE: gpus}}
    metadata: dict[str, Any] = {
        "name": request.name,
        "labels": {"app.kubernetes.io/part-of": "landmarkflow", RUN_LABEL: request.run_id},
    }
    if request.owner is not None:
        metadata["ownerReferences"] = [dict(request.owner)]
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {"runtimeRef": {"name": RUNTIME}, "trainer": trainer, "runtimePatches": [_shared_memory_patch()]},
    }
    return TrainerV1alpha1TrainJob.from_dict(manifest)


def trainjob_yaml(job: TrainerV1alpha1TrainJob) -> str:
    """The job as YAML for `kubectl apply -f -`."""
    return yaml.safe_dump(job.to_dict(), sort_keys=False)


def _shared_memory_patch() -> dict[str, Any]:
    """A memory-backed /dev/shm in every node pod, patched into the runtime's node template."""
    pod = {
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}],
        "containers": [{"name": NODE, "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}],
    }
    node_job = {"name": NODE, "template": {"spec": {"template": {"spec": pod}}}}
    return {"manager": PATCH_MANAGER, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [node_job]}}}}
