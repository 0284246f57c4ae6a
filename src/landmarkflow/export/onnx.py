"""ONNX export of a model's `predict` (images -> crop-pixel landmarks) with its deploy metadata, and its parity check.

The graph is the whole `predict`: ImageNet normalisation, the network and the codec's decode, so a lone .onnx
file turns crops into coordinates. Export uses the torch.export-based (dynamo) exporter with a dynamic batch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from landmarkflow.fileio import atomic_path
from landmarkflow.models.base import LandmarkModel
from landmarkflow.runtime import DeployInfo, open_session, run_onnx

EXAMPLE_BATCH = 2
"""The exporter specialises batch sizes 0 and 1, so the example batch must be >= 2 for a dynamic batch."""


class _Predict(nn.Module):
    """`model.predict` as a module's forward: the exported graph's one input and one output."""

    def __init__(self, model: LandmarkModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict(images)


class _PredictWithHeatmaps(_Predict):
    """`model.predict_with_heatmaps`: the landmarks and the heatmaps behind them, for a post-step outside the graph
    (LGCN's shape fit)."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return self.model.predict_with_heatmaps(images)


EXPORTER_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"
"""Warns once per torchvision op that torchvision is not installed: no CPU build of it exists, and no model here uses
its ops."""


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter without its notes that concern no model here: the torchvision ops it skips, and a deprecation
    inside PyTorch's own pytree code (its `LeafSpec` check)."""
    registry = logging.getLogger(EXPORTER_REGISTRY_LOGGER)
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
            yield
    finally:
        registry.setLevel(level)


def export_onnx(model: LandmarkModel, path: str | Path, info: DeployInfo, opset: int = 18) -> Path:
    """Write `model.predict` as ONNX to `path` (atomically), with `info` as metadata; returns the path.

    Input `info.input_name` (N, 3, S, S) float32 RGB in [0, 1], output `info.output_name` (N, K, 2) float32 crop
    pixels, N dynamic; when `info.heatmap_name` is set, the final heatmaps (N, K, H, W) that `predict_with_heatmaps`
    gives (the flip test's average) as that second output. The model is exported in eval mode and its previous mode
    is restored afterwards.
    """
    path = Path(path)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    example = torch.rand(EXAMPLE_BATCH, 3, model.input_size, model.input_size, device=device)
    graph, outputs = (
        (_PredictWithHeatmaps(model), [info.output_name, info.heatmap_name])
        if info.heatmap_name
        else (_Predict(model), [info.output_name])
    )
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                graph.eval(),
                (example,),
                dynamo=True,
                input_names=[info.input_name],
                output_names=outputs,
                dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=4096)}},
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
    finally:
        model.train(was_training)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **info.to_props()})
    onnx.checker.check_model(proto, full_check=True)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


def compare_outputs(model: LandmarkModel, onnx_path: str | Path, images: np.ndarray) -> dict[str, float]:
    """Landmark differences (px) between `model.predict` and onnxruntime, on the first image alone and the batch.

    Needs a batch of >= 2 images so that the dynamic batch dimension is exercised as well as batch 1.
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) < 2:
        raise ValueError(f"compare_outputs needs a (N>=2, 3, S, S) batch, got shape {images.shape}")
    session = open_session(onnx_path)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model.predict(torch.from_numpy(images).to(device)).float().cpu().numpy()
    finally:
        model.train(was_training)
    single = np.abs(run_onnx(session, images[:1]) - expected[:1])
    batch = np.abs(run_onnx(session, images) - expected)
    both = np.concatenate([single.ravel(), batch.ravel()])
    return {
        "max_abs_diff_px": float(both.max()),
        "mean_abs_diff_px": float(both.mean()),
        "max_abs_diff_px_batch1": float(single.max()),
        "max_abs_diff_px_batch": float(batch.max()),
        "batch_size": float(len(images)),
    }
