"""The GPUs a branch's train and export pods ask for."""

from __future__ import annotations

import pytest

from landmarkflow.gpu_requests import GpuRequests, gpu_requests


@pytest.mark.parametrize(
    "gpus,nodes,expected",
    [
        (0, 1, GpuRequests(train=0, export=0)),  # CPUs only
        (1, 1, GpuRequests(train=1, export=1)),
        (4, 1, GpuRequests(train=4, export=1)),  # DDP in the step's pod; one GPU builds the engines
        (4, 2, GpuRequests(train=0, export=1)),  # the TrainJob's nodes hold the GPUs; the step only waits
        (0, 3, GpuRequests(train=0, export=0)),
    ],
)
def test_train_asks_for_its_nodes_gpus_only_where_it_trains_and_export_for_one(
    gpus: int, nodes: int, expected: GpuRequests
) -> None:
    assert gpu_requests(gpus, nodes) == expected


@pytest.mark.parametrize(
    "gpus,nodes,message",
    [(-1, 1, r"gpus: -1; expected 0 \(train on CPUs\) or more"), (2, 0, r"nodes: 0; expected 1 \(train in the step")],
)
def test_impossible_counts_are_refused_naming_the_parameter(gpus: int, nodes: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gpu_requests(gpus, nodes)
