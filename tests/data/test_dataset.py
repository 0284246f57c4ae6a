import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader, DistributedSampler

from landmarkflow.config import AugmentConfig
from landmarkflow.data.dataset import EpochSampler, FaceDataset, split_train_val
from landmarkflow.geometry import CropSpec, crop_matrix, transform_points, warp_image
from landmarkflow.imageio import read_rgb
from landmarkflow.layouts import get_layout
from landmarkflow.runtime import crop_to_input
from tests.fakes import dot_face_record, dots_hih

MODEL = dots_hih()
CROP = CropSpec(96, 1.25, math.inf)


def test_plain_item_is_the_box_crop_with_targets(tmp_path: Path) -> None:
    record = dot_face_record(tmp_path)
    item = FaceDataset([record], tmp_path, MODEL.codec, CROP)[0]
    assert item["image"].shape == (3, 96, 96) and item["image"].min() >= 0.0 and item["image"].max() <= 1.0
    expected = transform_points(record.landmarks, crop_matrix(record.bbox, 96, 1.25))
    np.testing.assert_allclose(item["landmarks"].numpy(), expected, atol=1e-4)
    assert item["int_heatmap"].shape == (68, 24, 24)
    decoded = MODEL.codec.decode({k: v[None] for k, v in item.items() if k in ("int_heatmap", "dec_heatmap")})
    np.testing.assert_allclose(decoded[0].numpy(), expected, atol=0.05)


def test_plain_image_is_the_model_input_predict_and_evaluation_use(tmp_path: Path) -> None:
    record = dot_face_record(tmp_path)
    image = FaceDataset([record], tmp_path, MODEL.codec, CROP)[0]["image"]
    crop = warp_image(read_rgb(tmp_path / record.image_path), crop_matrix(record.bbox, 96, 1.25), 96)
    assert image.is_contiguous()
    np.testing.assert_array_equal(image.numpy(), crop_to_input(crop))


def test_flip_augmentation_permutes_points_semantically(tmp_path: Path) -> None:
    record = dot_face_record(tmp_path)
    augment = AugmentConfig(
        flip_prob=1.0,
        rotation_prob=0.0,
        scale_range=(1.0, 1.0),
        shift_fraction=0.0,
        blur_prob=0.0,
        occlusion_prob=0.0,
        color_jitter=0.0,
    )
    item = FaceDataset([record], tmp_path, MODEL.codec, CROP, augment)[0]
    plain = transform_points(record.landmarks, crop_matrix(record.bbox, 96, 1.25))
    np.testing.assert_allclose(item["landmarks"].numpy(), get_layout("68").flip_points(plain, 96), atol=1e-4)


def test_cached_images_give_the_same_items_and_are_read_once(tmp_path: Path) -> None:
    record = dot_face_record(tmp_path)
    plain = FaceDataset([record], tmp_path, MODEL.codec, CROP, AugmentConfig(), seed=7)
    cached = FaceDataset([record], tmp_path, MODEL.codec, CROP, AugmentConfig(), seed=7, cache_images=True)
    expected = [plain[(epoch, 0)] for epoch in (0, 1)]
    first = cached[(0, 0)]
    (tmp_path / record.image_path).unlink()  # the second epoch must come from memory
    for want, got in zip(expected, (first, cached[(1, 0)]), strict=True):
        assert want.keys() == got.keys()
        for name in want:
            np.testing.assert_array_equal(got[name].numpy(), want[name].numpy())
    with pytest.raises(FileNotFoundError, match="no such image file"):
        plain[(1, 0)]


def test_augmentation_is_reproducible_per_epoch_and_varies_between_epochs(tmp_path: Path) -> None:
    dataset = FaceDataset([dot_face_record(tmp_path)], tmp_path, MODEL.codec, CROP, AugmentConfig(), seed=7)
    first = dataset[0]["landmarks"]
    assert np.array_equal(dataset[0]["landmarks"], first)
    dataset.set_epoch(1)
    assert not np.array_equal(dataset[0]["landmarks"], first)


def test_camera_augmentations_change_only_the_pixels_and_only_when_asked(tmp_path: Path) -> None:
    record = dot_face_record(tmp_path)
    still = {"flip_prob": 0.0, "rotation_prob": 0.0, "scale_range": (1.0, 1.0), "shift_fraction": 0.0}
    still |= {"blur_prob": 0.0, "occlusion_prob": 0.0, "color_jitter": 0.0}

    def item(**chances: float) -> dict:
        return FaceDataset([record], tmp_path, MODEL.codec, CROP, AugmentConfig(**still, **chances))[0]

    plain = item()
    unaugmented = FaceDataset([record], tmp_path, MODEL.codec, CROP)[0]
    np.testing.assert_array_equal(plain["image"].numpy(), unaugmented["image"].numpy())
    grey = item(grayscale_prob=1.0)["image"].numpy()
    assert np.abs(np.diff(grey, axis=0)).max() < 1e-6 and grey.std() > 0.05
    for chance in ("tone_prob", "sharpen_prob", "noise_prob"):
        seen = item(**{chance: 1.0})
        assert 0.001 < np.abs(seen["image"].numpy() - plain["image"].numpy()).mean() < 0.2, chance
        np.testing.assert_array_equal(seen["landmarks"].numpy(), plain["landmarks"].numpy())
        np.testing.assert_array_equal(seen["int_heatmap"].numpy(), plain["int_heatmap"].numpy())


def test_saturation_moves_the_colours_toward_their_grey(tmp_path: Path) -> None:
    record = dot_face_record(tmp_path)
    white_dots = cv2.imread(str(tmp_path / record.image_path)).astype(np.float32)
    cv2.imwrite(str(tmp_path / record.image_path), (white_dots * [0.2, 0.6, 0.9] + [90, 40, 10]).astype(np.uint8))
    still = {"flip_prob": 0.0, "rotation_prob": 0.0, "scale_range": (1.0, 1.0), "shift_fraction": 0.0}
    still |= {"blur_prob": 0.0, "occlusion_prob": 0.0, "color_jitter": 0.0}

    def image(**augment: object) -> np.ndarray:
        return FaceDataset([record], tmp_path, MODEL.codec, CROP, AugmentConfig(**still, **augment))[0]["image"].numpy()

    plain, grey = image(), image(grayscale_prob=1.0)
    np.testing.assert_array_equal(image(saturation_prob=1.0, saturation_range=(0.0, 0.0)), grey)
    np.testing.assert_array_equal(image(saturation_prob=1.0, saturation_range=(1.0, 1.0)), plain)
    half = image(saturation_prob=1.0, saturation_range=(0.5, 0.5))
    assert np.abs(half - grey).mean() == pytest.approx(0.5 * np.abs(plain - grey).mean(), rel=0.02)


def test_a_saturation_range_out_of_order_or_below_zero_is_refused() -> None:
    for bad in ((1.2, 0.5), (-0.1, 1.0)):
        with pytest.raises(ValueError, match="saturation_range"):
            AugmentConfig(saturation_range=bad)


def _epoch_landmarks(dataset: FaceDataset, workers: int, epochs: int) -> list[np.ndarray]:
    sampler = EpochSampler(DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=3))
    loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers, persistent_workers=workers > 0)
    drawn = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        drawn.append(np.concatenate([batch["landmarks"].numpy() for batch in loader]))
    return drawn


def test_persistent_workers_augment_each_epoch_anew_as_the_main_process_would(tmp_path: Path) -> None:
    """Workers keep their own copy of the dataset across epochs: the epoch reaches them with every index."""
    records = [dot_face_record(tmp_path, i) for i in range(4)]
    dataset = FaceDataset(records, tmp_path, MODEL.codec, CROP, AugmentConfig(), seed=7)
    in_process, in_a_worker = _epoch_landmarks(dataset, 0, 2), _epoch_landmarks(dataset, 1, 2)
    assert not np.array_equal(in_a_worker[0], in_a_worker[1])
    for main, worker in zip(in_process, in_a_worker, strict=True):
        np.testing.assert_array_equal(main, worker)


def test_validation_hold_out_is_deterministic_and_from_train_only(tmp_path: Path) -> None:
    records = [dot_face_record(tmp_path, i, "train" if i < 20 else "test") for i in range(24)]
    train, val = split_train_val(records, 0.25, seed=1)
    assert (len(train), len(val)) == (15, 5)
    assert all(r.split == "train" for r in train + val)
    assert [r.sample_id for r in val] == [r.sample_id for r in split_train_val(records, 0.25, seed=1)[1]]


def test_mixed_layouts_are_refused(tmp_path: Path) -> None:
    face = dot_face_record(tmp_path, 1)
    other = replace(face, layout="98", landmarks=np.resize(face.landmarks, (98, 2)), visible=np.ones(98, dtype=bool))
    with pytest.raises(ValueError, match="one layout"):
        FaceDataset([dot_face_record(tmp_path), other], tmp_path, MODEL.codec, CROP)
