"""Torch dataset: crop each face from its box, augment, and encode targets with the model's codec.

The crop is the same square-around-the-box map that inference uses (geometry.CropSpec); training
jitters the box (scale, shift) so that a box near the dataset's own reads well. A detector's box is further off
from 300W's landmark boxes: a 68-point model's Predictor reads such a face again from its first answer's box
(`Predictor.own_box_crops`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from landmarkflow.codecs.base import Codec
from landmarkflow.config import AugmentConfig
from landmarkflow.data.manifest import TRAIN_SPLIT, FaceRecord, in_split
from landmarkflow.geometry import CropSpec, transform_points
from landmarkflow.imageio import read_rgb
from landmarkflow.layouts import get_layout
from landmarkflow.runtime import crop_to_input


class FaceDataset(Dataset):
    """Faces of a manifest as model-ready crops and codec targets.

    Each item: `image` (3,S,S), the codec's targets, `landmarks` (K,2) in crop pixels, `matrix` (2,3)
    image->crop, and `index` into `records` (so evaluation can map predictions back to the image). Crops are cut as
    `crop_spec` says, as the deployed model's are; training jitters its box by the augmentation's scale range.
    """

    def __init__(
        self,
        records: Sequence[FaceRecord],
        root: str | Path,
        codec: Codec,
        crop_spec: CropSpec,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        cache_images: bool = False,
    ) -> None:
        self.records = list(records)
        self.root = Path(root)
        self.codec = codec
        self.crop_spec = crop_spec
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._decoded: dict[int, np.ndarray] | None = {} if cache_images else None
        layouts = {r.layout for r in self.records}
        if len(layouts) > 1:
            raise ValueError(f"a FaceDataset holds one layout, got {sorted(layouts)}")
        self.layout = get_layout(layouts.pop()) if layouts else None

    def __len__(self) -> int:
        return len(self.records)

    def largest_shrink(self) -> float:
        """The most any crop of these faces shrinks its image, at the widest crop the augmentation draws."""
        spec = self.crop_spec
        widest = spec.box_scale * (self.augment.scale_range[1] if self.augment else 1.0)
        sides = [max(r.bbox[2] - r.bbox[0], r.bbox[3] - r.bbox[1], 1.0) for r in self.records]
        return widest * max(sides, default=0.0) / spec.size

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw per epoch while keeping every epoch reproducible."""
        self.epoch = epoch

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Face `key`, or `(epoch, index)`: the epoch's augmentation draw of face `index`, as `EpochSampler` asks
        for it (a worker process holds its own copy of the dataset, which `set_epoch` does not reach)."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        record = self.records[index]
        image = self._image(index)
        rng = np.random.default_rng((self.seed, epoch, index)) if self.augment else None
        matrix, flipped = self._matrix(record, rng)
        crop = self.crop_spec.cut(image, matrix)
        points = transform_points(record.landmarks, matrix)
        visible = record.visible
        if flipped:
            perm = list(self.layout.flip_permutation)
            points, visible = points[perm], visible[perm]
        if rng is not None:
            crop = self._photometric(crop, rng)
        targets = self.codec.encode(points, visible)
        item = {name: torch.from_numpy(np.asarray(value)) for name, value in targets.items()}
        item.update(
            image=torch.from_numpy(np.ascontiguousarray(crop_to_input(crop))),
            landmarks=torch.from_numpy(points.astype(np.float32)),
            matrix=torch.from_numpy(matrix.astype(np.float64)),
            index=torch.tensor(index),
        )
        return item

    def _image(self, index: int) -> np.ndarray:
        """Face `index`'s image, decoded once per process when caching: decoding is a twentieth of a small model's
        training step, paid again every epoch otherwise."""
        if self._decoded is None:
            return read_rgb(self.root / self.records[index].image_path)
        if index not in self._decoded:
            self._decoded[index] = read_rgb(self.root / self.records[index].image_path)
        return self._decoded[index]

    def _matrix(self, record: FaceRecord, rng: np.random.Generator | None) -> tuple[np.ndarray, bool]:
        if rng is None:
            return self.crop_spec.matrix(record.bbox), False
        aug = self.augment
        scale = rng.uniform(*aug.scale_range)
        rotation = rng.uniform(-aug.rotation_deg, aug.rotation_deg) if rng.random() < aug.rotation_prob else 0.0
        shift = tuple(rng.uniform(-aug.shift_fraction, aug.shift_fraction, size=2))
        flip = bool(rng.random() < aug.flip_prob)
        return self.crop_spec.matrix(record.bbox, rotation, shift, flip, scale), flip

    def _photometric(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blur, occlusion, per-channel gain, then saturation, a tone curve, grey, sharpening and noise, each by its
        chance, on the uint8 crop (saturating cv2 ops: ~10x cheaper than float). Rendered faces are drawn once: the
        later five give each epoch's view of a face another camera, as photos vary."""
        aug = self.augment
        out = crop
        if rng.random() < aug.blur_prob:
            sigma = rng.uniform(0.5, 2.0)
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        if rng.random() < aug.occlusion_prob:
            side = self.crop_spec.size
            w, h = (int(side * rng.uniform(0.1, 0.4)) for _ in range(2))
            x, y = int(rng.integers(0, side - w)), int(rng.integers(0, side - h))
            out = out.copy()
            out[y : y + h, x : x + w] = rng.uniform(0, 255, size=3)
        gains = 1.0 + rng.uniform(-aug.color_jitter, aug.color_jitter, size=3)
        out = cv2.multiply(out, (*gains, 0.0), dtype=cv2.CV_8U)
        if aug.saturation_prob and rng.random() < aug.saturation_prob:
            grey = _grey(out)
            amount = rng.uniform(*aug.saturation_range)
            out = cv2.addWeighted(out, amount, grey, 1.0 - amount, 0.0)
        if aug.tone_prob and rng.random() < aug.tone_prob:
            gamma, contrast, brightness = np.exp(rng.uniform(-0.5, 0.5)), rng.uniform(0.6, 1.4), rng.uniform(-30, 30)
            curve = ((np.arange(256) / 255.0) ** gamma * 255.0 - 128.0) * contrast + 128.0 + brightness
            out = cv2.LUT(out, np.clip(curve + 0.5, 0, 255).astype(np.uint8))
        if aug.grayscale_prob and rng.random() < aug.grayscale_prob:
            out = _grey(out)
        if aug.sharpen_prob and rng.random() < aug.sharpen_prob:
            amount = rng.uniform(0.5, 1.5)
            out = cv2.addWeighted(out, 1.0 + amount, cv2.GaussianBlur(out, (0, 0), 1.0), -amount, 0.0)
        if aug.noise_prob and rng.random() < aug.noise_prob:
            noise = rng.standard_normal(out.shape, dtype=np.float32) * rng.uniform(2.0, 10.0)
            out = cv2.add(out, noise, dtype=cv2.CV_8U)
        return out


def _grey(rgb: np.ndarray) -> np.ndarray:
    """The uint8 RGB crop's luminance in all three channels: the grey crop, and saturation's zero point."""
    return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


class EpochSampler(Sampler[tuple[int, int]]):
    """A DistributedSampler's indices, each paired with the epoch. DataLoader workers persist across epochs with
    their own copy of the dataset, so the epoch that decides an item's augmentation travels with its index."""

    def __init__(self, sampler: DistributedSampler) -> None:
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def shard_sampler(dataset: Dataset, world_size: int, rank: int, seed: int) -> EpochSampler:
    """Rank `rank`'s shard of every epoch: the epoch's shuffled order (the same on every rank, from the seed and the
    epoch) dealt to the ranks in turn. The last `len(dataset) % world_size` faces of that order sit the epoch out (a
    different few each epoch) rather than being repeated on a second rank, so that the shards are disjoint and equal.
    In a world of one this is the whole shuffled order."""
    return EpochSampler(
        DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
    )


def split_train_val(records: Sequence[FaceRecord], val_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic hold-out of the train split for per-epoch validation (never the test split)."""
    train = in_split(records, TRAIN_SPLIT)
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = math.floor(len(train) * val_fraction)
    held = set(order[:n_val].tolist())
    return [r for i, r in enumerate(train) if i not in held], [r for i, r in enumerate(train) if i in held]
