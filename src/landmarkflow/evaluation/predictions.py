"""Predict landmarks for manifest faces in the image frame, with any crops -> points function.

Validation, evaluation and the ONNX parity gate all go through `predict_records`, so PyTorch and
onnxruntime are compared on exactly the same crops and mapped back by exactly the same inverse.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from landmarkflow.data.manifest import FaceRecord
from landmarkflow.geometry import CropSpec
from landmarkflow.imageio import read_rgb
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.runtime import cut_views
from landmarkflow.upright import UprightPass


@dataclass(frozen=True)
class CropBatch:
    """A batch of N faces: their RGB images, boxes, and the (N * V, 3, S, S) float32 [0, 1] crops and (N * V, 2, 3)
    image->crop matrices of their V views (`CropSpec.views`; the images stay for the upright pass's second crops)."""

    images: list[np.ndarray]
    boxes: np.ndarray
    crops: np.ndarray
    matrices: np.ndarray


def iterate_crops(
    records: Sequence[FaceRecord],
    root: Path,
    crop_spec: CropSpec,
    batch_size: int,
    boxes: np.ndarray | None = None,
) -> Iterator[CropBatch]:
    """The records' faces in batches of `batch_size` crops (`batch_size` // V faces, at least one), each photo read
    once."""
    boxes = np.stack([r.bbox for r in records]) if boxes is None else np.asarray(boxes)
    faces = max(1, batch_size // len(crop_spec.views))
    for start in range(0, len(records), faces):
        images = [read_rgb(Path(root) / record.image_path) for record in records[start : start + faces]]
        batch_boxes = boxes[start : start + len(images)]
        matrices, crops = cut_views(crop_spec, images, batch_boxes)
        yield CropBatch(images, batch_boxes, crops, matrices)


def predict_records(
    predict: CropPredictor,
    records: Sequence[FaceRecord],
    root: Path,
    crop_spec: CropSpec,
    batch_size: int = 32,
    boxes: np.ndarray | None = None,
    upright: UprightPass | None = None,
) -> np.ndarray:
    """(N, K, 2) predictions in image pixels for every record (boxes default to the manifest's), on crops cut as
    `crop_spec` says (each face's views averaged; `batch_size` crops a model call), with the upright second pass
    where one is given."""
    return predict_records_each([predict], records, root, crop_spec, batch_size, boxes, upright)[0]


def predict_records_each(
    predictors: Sequence[CropPredictor],
    records: Sequence[FaceRecord],
    root: Path,
    crop_spec: CropSpec,
    batch_size: int = 32,
    boxes: np.ndarray | None = None,
    upright: UprightPass | None = None,
) -> list[np.ndarray]:
    """`predict_records` for each predictor, on the same first crops read and warped once (the parity gate's case,
    one pass; evaluate's post-steps with the upright pass, each predictor's second crops from its own answers)."""
    outputs: list[list[np.ndarray]] = [[] for _ in predictors]
    for batch in iterate_crops(records, root, crop_spec, batch_size, boxes):
        for predict, output in zip(predictors, outputs, strict=True):
            points = crop_spec.to_image(predict(batch.crops), batch.matrices)
            if upright is not None:
                points = upright.run(predict, batch.images, batch.boxes, points, crop_spec)
            output.extend(points)
    return [np.stack(output) if output else np.zeros((0, 0, 2)) for output in outputs]


def torch_predictor(model: LandmarkModel, device: torch.device | str = "cpu") -> CropPredictor:
    """Wrap a model's `predict` as a numpy crops -> crop points function (eval mode, no grad)."""
    model.to(memory_format=model.memory_format()).eval()

    def run(crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.predict(torch.from_numpy(crops).to(device)).float().cpu().numpy()

    return run
