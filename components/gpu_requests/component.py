"""GPU requests: how many GPUs a branch's train and export pods ask for (KFP does no arithmetic on parameters)."""

from typing import NamedTuple

from kfp import dsl

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gpu_requests(gpus: int, nodes: int) -> NamedTuple("GpuRequests", [("train", int), ("export", int)]):
    """The GPUs of each branch's train pod and export pod.

    Args:
        gpus: GPUs per training node (the pipeline's `gpus`).
        nodes: Training nodes (the pipeline's `nodes`).

    Returns:
        train: `gpus` where the step trains in its own pod; 0 where it launches a TrainJob and waits for it.
        export: 1 where there are GPUs (TensorRT engines are built on one), else 0.
    """
    from typing import NamedTuple

    from landmarkflow.gpu_requests import gpu_requests as requests_for

    requests = requests_for(gpus, nodes)
    return NamedTuple("GpuRequests", [("train", int), ("export", int)])(requests.train, requests.export)
