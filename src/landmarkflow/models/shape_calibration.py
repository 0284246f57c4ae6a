"""A linear correction of a model's answer in the modes of face shape, fitted after training on the train split.

Small networks answer a face as less turned, less open and less unusual than it is: their shapes regress toward the
mean. With the answer similarity-aligned to the train shapes' mean (so that position, size and roll drop out), each
of the first `modes` principal modes of the train shapes gets an affine map from the answer's coefficient to the
truth's, fitted by least squares on the model's own answers for the train faces: a gain above 1 undoes the shrinking
of a mode the network reads (the turn), a gain below 1 damps a mode it reads mostly as noise. The correction is mapped
back through the inverse alignment, so it turns and scales with the face. The eye points keep the answer: the
upright pass reads the face's roll from their line, and on faces turned far a correction that tilted it sent the
second look the wrong way (configs/hih_synthetic.md has the measurements). Everything is buffers and tensor algebra,
so the checkpoint, the ONNX graph and a TensorRT engine carry it as part of `predict`; the alignment works with means
over the points and a mean shape of unit RMS, so that no intermediate leaves float16's range. LGCN, which answers
with its shape fit outside the graph, carries it in its shape model instead (`correction`, models/shape_correction.py).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from landmarkflow.layouts import Layout
from landmarkflow.models.shape_correction import TINY, ShapeCorrection

FACES_PER_MODE = 10
"""A fit needs this many faces per mode (before their mirror images), or it fits the faces' noise."""
FIT_FACES_PER_MODE = 50
"""A fit reads at most this many faces per mode: 400 train faces fitted 8 modes of HIH, DSAT, RDFN and LGCN as well
as 1800 did (every test set within 0.3 points either way), and each face costs a prediction (LGCN's shape fit 25 ms
on one core)."""
SPREAD_FLOOR = 1e-3
"""Answers that spread along a mode less than this share of the truths' spread do not read it at all (an untrained
network answers every face alike: its answers and their mirror images differ by noise alone, where the default
models' answers spread 0.07-1.6x as far as the truth in each of their 12 modes). That mode keeps the answer's gain,
1, and moves by the mean offset, where a least-squares slope would be noise divided by almost nothing (gains of
10^4)."""
PROCRUSTES_ROUNDS = 3
"""Generalised Procrustes iterations for the mean shape: the mean moves by under 1e-6 of its size after three."""


class ShapeCalibration(nn.Module):
    """(N, K, 2) points -> the same points with their first `modes` shape modes corrected; the identity until fitted."""

    def __init__(self, layout: Layout, modes: int) -> None:
        super().__init__()
        self.layout = layout
        num_points = layout.num_points
        moves = torch.ones(num_points, 1)
        moves[[index for eye in layout.eyes for index in layout.groups[eye]]] = 0.0
        self.register_buffer("moves", moves, persistent=False)
        self.register_buffer("mean_shape", torch.zeros(num_points, 2))
        self.register_buffer("centre", torch.zeros(2 * num_points))
        self.register_buffer("basis", torch.zeros(modes, 2 * num_points))
        self.register_buffer("gain", torch.ones(modes))
        self.register_buffer("bias", torch.zeros(modes))
        self.register_buffer("low", torch.full((modes,), -torch.inf))
        self.register_buffer("high", torch.full((modes,), torch.inf))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        origin = points.mean(dim=1, keepdim=True)
        centred = points - origin
        scale, turn = _similarity_to(centred, self.mean_shape)
        aligned = _rotate(centred, scale, turn).flatten(1)
        coefficients = (aligned - self.centre) @ self.basis.T
        corrected = torch.clamp(self.gain * coefficients + self.bias, self.low, self.high)
        correction = ((corrected - coefficients) @ self.basis).unflatten(1, (-1, 2))
        size = (scale * scale + turn * turn).clamp_min(TINY)  # the alignment's inverse: its transpose over this
        return points + self.moves * _rotate(correction, scale / size, -turn / size)

    @property
    def min_faces(self) -> int:
        """The fewest faces `fit` takes."""
        return FACES_PER_MODE * self.basis.shape[0]

    @property
    def max_faces(self) -> int:
        """The most faces a fit needs to read (train/calibrate.py takes an even spread of the train faces)."""
        return FIT_FACES_PER_MODE * self.basis.shape[0]

    def correction(self) -> ShapeCorrection:
        """This calibration as numpy arrays, for a post-step outside the graph (LGCN's shape fit)."""
        buffers = {name: getattr(self, name).detach().cpu().double().numpy() for name in ShapeCorrection.names()}
        return ShapeCorrection(**buffers)

    def reset(self) -> None:
        """Back to the identity, so that the model answers uncorrected (before a fit)."""
        self.basis.zero_()
        self.gain.fill_(1.0)
        self.bias.zero_()
        self.low.fill_(-torch.inf)
        self.high.fill_(torch.inf)

    @torch.no_grad()
    def fit(self, answers: np.ndarray, truths: np.ndarray) -> None:
        """Fit to (N, K, 2) uncorrected answers and the true points of the same faces, in any one frame per face,
        and to their mirror images: a correction fitted to both sides of every face mirrors with the face, so that
        the flip test's `predict(mirror(x)) == mirror(predict(x))` still holds."""
        modes = self.basis.shape[0]
        if len(answers) < self.min_faces:
            raise ValueError(
                f"shape calibration of {modes} modes needs at least {self.min_faces} faces, got {len(answers)}"
            )
        answers, truths = (
            np.concatenate([shapes, self.layout.flip_points(shapes, 0)]).astype(np.float64)
            for shapes in (np.asarray(answers), np.asarray(truths))
        )
        mean = procrustes_mean(truths)
        aligned_answers, aligned_truths = align_to(mean, answers, truths)
        centre = aligned_truths.mean(axis=0)
        basis = np.linalg.svd(aligned_truths - centre, full_matrices=False)[2][:modes]
        said, true = (aligned_answers - centre) @ basis.T, (aligned_truths - centre) @ basis.T
        fits = [_affine_fit(said[:, mode], true[:, mode]) for mode in range(modes)]
        for name, value in (
            ("mean_shape", mean),
            ("centre", centre),
            ("basis", basis),
            ("gain", [gain for gain, _ in fits]),
            ("bias", [bias for _, bias in fits]),
            ("low", true.min(axis=0)),
            ("high", true.max(axis=0)),
        ):
            getattr(self, name).copy_(torch.as_tensor(np.asarray(value), dtype=torch.float32))


def _affine_fit(said: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """The least-squares gain and offset from a mode's answered coefficients to the true ones (`SPREAD_FLOOR`)."""
    if said.std() < SPREAD_FLOOR * true.std():
        return 1.0, float(true.mean() - said.mean())
    gain, bias = np.polyfit(said, true, 1)
    return float(gain), float(bias)


def procrustes_mean(shapes: np.ndarray) -> np.ndarray:
    """The (K, 2) mean of `shapes` after each is similarity-aligned to it, centred and of unit RMS."""
    mean = _normalised(shapes.mean(axis=0))
    for _ in range(PROCRUSTES_ROUNDS):
        mean = _normalised(align_to(mean, shapes)[0].reshape(len(shapes), -1, 2).mean(axis=0))
    return mean


def align_to(mean: np.ndarray, answers: np.ndarray, *followers: np.ndarray) -> list[np.ndarray]:
    """Each answer, flattened, moved by the similarity that aligns it to `mean`, and each of `followers` (other
    shapes of the same faces: their truths) moved with it, the frame `ShapeCalibration.forward` works in, where only
    the answer is known."""
    origin = answers.mean(axis=1, keepdims=True)
    scale, turn = _similarity_to(torch.from_numpy(answers - origin), torch.from_numpy(mean))
    moved = (_rotate(torch.from_numpy(shapes - origin), scale, turn) for shapes in (answers, *followers))
    return [shapes.flatten(1).numpy() for shapes in moved]


def _normalised(shape: np.ndarray) -> np.ndarray:
    """Centred, with a root-mean-square distance of 1 from its centre."""
    centred = shape - shape.mean(axis=0)
    return centred / np.sqrt((centred**2).sum(axis=1).mean())


def _similarity_to(centred: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per shape, the least-squares similarity [[a, -b], [b, a]] taking the centred (N, K, 2) points onto `mean`
    (centred), as (N, 1, 1) tensors a and b."""
    x, y = centred[..., 0], centred[..., 1]
    norm = (x * x + y * y).mean(dim=1, keepdim=True).clamp_min(TINY)
    a = (x * mean[:, 0] + y * mean[:, 1]).mean(dim=1, keepdim=True) / norm
    b = (x * mean[:, 1] - y * mean[:, 0]).mean(dim=1, keepdim=True) / norm
    return a.unsqueeze(-1), b.unsqueeze(-1)


def _rotate(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, K, 2) points times [[a, -b], [b, a]] per shape."""
    x, y = points[..., :1], points[..., 1:]
    return torch.cat([a * x - b * y, b * x + a * y], dim=-1)
