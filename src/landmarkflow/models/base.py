"""The model contract: an nn.Module with its codec, input size, loss and coordinate `predict`."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from landmarkflow.codecs.base import Codec
from landmarkflow.layouts import get_layout
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.models.params.base import ModelParams
from landmarkflow.models.shape_calibration import ShapeCalibration

if TYPE_CHECKING:
    from landmarkflow.models.lgcn_shape import ShapeModel


class LandmarkModel(nn.Module):
    """Every model takes RGB crops in [0, 1], shape (N, 3, S, S), and normalises them itself.

    Normalisation lives inside the module so that the exported ONNX graph and every caller agree on it.
    """

    codec: Codec
    input_size: int
    num_points: int
    #: Keep the weights NHWC (channels_last): measured 1.2-1.5x faster training on CPU (oneDNN) for the
    #: hourglass models; a model whose own ops prefer NCHW (LGCN's blur products, 1.2x slower) sets False.
    channels_last: ClassVar[bool] = True
    #: Whether `loss` sums over the batch instead of averaging: DDP averages gradients over ranks, so the trainer
    #: multiplies such a loss by the world size to take the step one process takes on the whole global batch.
    loss_sums_over_batch: ClassVar[bool] = False
    #: Whether the shape calibration corrects `predict`'s points: a model that answers through a post-step outside the
    #: graph (LGCN's shape fit) sets False, its calibration corrects that answer, and its graph's points stay its own.
    calibrates_graph: ClassVar[bool] = True

    def __init__(self, params: ModelParams) -> None:
        super().__init__()
        self.params = params
        self.codec = params.make_codec()
        self.input_size = params.input_size
        self.num_points = params.num_points
        if params.flip_test:  # the layouts are named by their point counts; a mirror swaps left and right points
            flip = torch.tensor(get_layout(str(params.num_points)).flip_permutation)
            self.register_buffer("flip_permutation", flip, persistent=False)
        self.shape_calibration = (
            ShapeCalibration(get_layout(str(params.num_points)), params.shape_calibration_modes)
            if params.shape_calibration_modes
            else None
        )

    def memory_format(self) -> torch.memory_format:
        """What `module.to(memory_format=...)` should get for this model's fastest convolutions."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @abstractmethod
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs by name (heatmaps, logits, ...)."""

    @abstractmethod
    def loss(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total training loss and its named parts (for logging)."""

    def training_inputs(self, targets: dict[str, torch.Tensor], epoch: int) -> dict[str, torch.Tensor]:
        """Extra keyword inputs of `forward` during training epoch `epoch` (0-based), built from the batch's targets:
        how a model takes teacher forcing (RDFN's ground-truth regions). Nothing by default."""
        return {}

    def reference_param_count(self) -> int:
        """Parameters as the authors' code counts them (the same as ours unless a model says otherwise)."""
        return sum(p.numel() for p in self.parameters())

    def shape_model(self, train_landmarks: np.ndarray, train_boxes: np.ndarray, box_scale: float) -> ShapeModel | None:
        """The shape model a deployed model's post-step needs (LGCN's), fitted on the train split; export saves it
        beside the ONNX, which then outputs the `heatmap` it is fitted to as well. None: the model has none."""
        return None

    def refined_predictor(
        self, train_landmarks: np.ndarray, train_boxes: np.ndarray, box_scale: float
    ) -> tuple[str, CropPredictor] | None:
        """A post-step that runs outside the exported graph (LGCN's shape fitting), as (name, crops -> crop
        points) built from the train split; evaluation reports NME with and without it. None: the model has none."""
        return None

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """(N, K, 2) landmarks in crop pixels: forward then the codec's decode. This is the ONNX graph.

        With `flip_test` the crops and their mirror images run as one batch and the mirror's landmarks, mirrored
        back (x -> S - 1 - x, left and right points swapped), are averaged in: the two views' errors partly cancel.
        A fitted `shape_calibration` corrects the answer last.
        """
        if not self.params.flip_test:
            return self.calibrated(self.codec.decode(self(images)))
        return self.calibrated(self.mirror_averaged(self.codec.decode(self(self.with_mirrors(images)))))

    def calibrated(self, points: torch.Tensor) -> torch.Tensor:
        """`points` through the shape calibration, where the model has one and it corrects the graph's points."""
        return points if self.shape_calibration is None or not self.calibrates_graph else self.shape_calibration(points)

    @staticmethod
    def with_mirrors(images: torch.Tensor) -> torch.Tensor:
        """The flip test's batch: the N crops, then their N mirror images, the order in which `mirror_averaged` and
        `mirror_averaged_maps` pair them."""
        return torch.cat([images, images.flip(-1)])

    def predict_with_heatmaps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`predict`'s landmarks and the final `heatmap` (N, K, H, W) behind them, from one forward, for a post-step
        outside the graph (LGCN's shape fit). With `flip_test` the heatmaps are the flip test's too
        (`mirror_averaged_maps`), so that the fit, like the landmarks, uses both views."""
        if not self.params.flip_test:
            outputs = self(images)
            return self.calibrated(self.codec.decode(outputs)), outputs["heatmap"]
        both = self(self.with_mirrors(images))
        points = self.calibrated(self.mirror_averaged(self.codec.decode(both)))
        return points, self.mirror_averaged_maps(both["heatmap"])

    def mirror_averaged_maps(self, both: torch.Tensor) -> torch.Tensor:
        """(2N, K, H, W) point maps of N crops then of their mirrors -> (N, K, H, W): the mirror's maps, mirrored
        back (W flipped, left and right channels swapped), averaged in. Exact for maps whose pixel grid is
        symmetric about the crop's centre, as LGCN's and DSAT's are."""
        count = both.shape[0] // 2  # slicing, unlike chunk(2), keeps the exported batch dimension dynamic
        return (both[:count] + both[count:].flip(-1).index_select(1, self.flip_permutation)) / 2

    def mirror_averaged(self, both: torch.Tensor) -> torch.Tensor:
        """(2N, K, 2) landmarks of N crops then of their mirrors -> (N, K, 2): the mirror's, mirrored back, averaged
        in (the flip test's last step, for a caller that also needs the forward's other outputs)."""
        count = both.shape[0] // 2  # slicing, unlike chunk(2), keeps the exported batch dimension dynamic
        mirrored = both[count:].index_select(1, self.flip_permutation)
        unflipped = torch.stack([(self.input_size - 1) - mirrored[..., 0], mirrored[..., 1]], dim=-1)
        return (both[:count] + unflipped) / 2
