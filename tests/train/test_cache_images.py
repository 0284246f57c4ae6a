"""`train.cache_images` through the trainer: decoding each training image once per loader process must change
nothing the model sees, so a cached run ends with exactly the weights and losses of an uncached one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from landmarkflow.config import ExperimentConfig, load_config
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.imageio import read_rgb
from landmarkflow.models.zoo import build_model
from landmarkflow.train.trainer import Trainer, seed_everything
from tests.fakes import ONE_CPU, assert_same_weights, dot_face_record

AUGMENTATIONS = ("flip", "rotation", "blur", "occlusion", "tone", "grayscale", "sharpen", "noise")


def _config(cache_images: bool, num_workers: int) -> ExperimentConfig:
    """test_resume's narrow LGCN for two epochs, with every augmentation drawn for every face: each of them then
    has its chance to write into a cached image, which only the second epoch would show."""
    overrides = {
        "model.filters": 8,
        "train.epochs": 2,
        "train.batch_size": 2,
        "train.num_workers": num_workers,
        "train.cache_images": cache_images,
        "train.amp": False,
        "model.shape_calibration_modes": 0,  # its fit after training would read the images deleted after epoch 1
        "eval.batch_size": 2,
        **{f"augment.{name}_prob": 1.0 for name in AUGMENTATIONS},
    }
    return load_config("configs/lgcn_synthetic_tiny.yaml", overrides)


def _trainer(config: ExperimentConfig, folder: Path, out_dir: Path) -> tuple[Trainer, list[FaceRecord]]:
    """A seeded trainer on four dot faces (two more validate), and its training records."""
    seed_everything(config.train.seed)
    records = [dot_face_record(folder, i) for i in range(6)]
    return Trainer(config, build_model(config.model), records[:4], records[4:], folder, out_dir, ONE_CPU), records[:4]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_cached_images_train_to_the_uncached_weights_and_stay_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, num_workers: int
) -> None:
    torch.set_num_threads(1)
    uncached, _ = _trainer(_config(False, num_workers), tmp_path, tmp_path / "uncached")
    expected = uncached.fit()

    cached, records = _trainer(_config(True, num_workers), tmp_path, tmp_path / "cached")
    decoded = [read_rgb(tmp_path / record.image_path) for record in records]
    record_epoch = Trainer._record_epoch

    def drops_the_images_after_the_first_epoch(self: Trainer, epoch: int, *args: float) -> None:
        """The second epoch can then only read the first one's decodes, kept by whichever process made them (a
        persistent worker's too)."""
        record_epoch(self, epoch, *args)
        for record in records:
            (tmp_path / record.image_path).unlink(missing_ok=True)

    monkeypatch.setattr(Trainer, "_record_epoch", drops_the_images_after_the_first_epoch)
    history = cached.fit()

    assert history.train_loss == expected.train_loss
    assert_same_weights(uncached.model.state_dict(), cached.model.state_dict())
    cache = cached.train_set._decoded
    if num_workers:
        assert cache == {}  # decoded in the worker: the main process holds no second copy
    else:  # an augmentation that wrote into a cached image would have corrupted every later epoch's view of it
        assert sorted(cache) == list(range(len(records)))
        for index, image in cache.items():
            np.testing.assert_array_equal(image, decoded[index])
