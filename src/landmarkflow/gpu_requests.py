"""How many GPUs each pod of a model branch asks the cluster for, from the pipeline's `gpus` and `nodes`.

A pod's accelerator count can come from a parameter, but KFP does no arithmetic on one, so the pipeline asks a step
of its own for these numbers (components/gpu_requests) instead of giving every pod the branch's `gpus`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuRequests:
    train: int
    """The train step's pod: `gpus` where it trains; none where it creates a TrainJob of `nodes` nodes (each node
    asks for `gpus` of its own) and only waits for it."""
    export: int
    """The export step's pod: one GPU, where the pipeline has any, to build and compare the TensorRT engines on."""


def gpu_requests(gpus: int, nodes: int) -> GpuRequests:
    """The GPUs of a branch's train and export pods for `gpus` GPUs per training node on `nodes` nodes."""
    if gpus < 0:
        raise ValueError(f"gpus: {gpus}; expected 0 (train on CPUs) or more GPUs per training node")
    if nodes < 1:
        raise ValueError(f"nodes: {nodes}; expected 1 (train in the step's pod) or more training nodes")
    return GpuRequests(train=gpus if nodes == 1 else 0, export=min(gpus, 1))
