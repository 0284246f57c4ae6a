"""Data pipeline speed per layout: FaceDataset samples/s in one worker against the bare floor (decode + one warp).

For each layout, synthetic faces at `--size` px are written in that layout's native format (300W, WFLW, COFW,
AFLW), read back with its reader, and served by `FaceDataset` with the augmentation and HIH codec of
configs/hih_synthetic_tiny.yaml (the codec scaled to the layout's point count). One thread, a plain loop: what one
DataLoader worker does. The floor decodes the same files and makes one cv2.warpAffine to the crop size; the ratio
says how much the crop + augment + encode costs on top; `cached_samples_per_s` is the dataset with
`train.cache_images`, past the epoch that decodes each image. An instrumented pass splits the time by stage.
Prints one JSON object per layout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import torch

import landmarkflow.data.dataset as dataset_module
import landmarkflow.geometry as geometry
from landmarkflow.config import load_config
from landmarkflow.data.dataset import FaceDataset
from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.synthetic import synthesize
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS
from landmarkflow.layouts import get_layout

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "hih_synthetic_tiny.yaml"


def make_dataset(records: list[FaceRecord], root: Path, layout: str, cache_images: bool = False) -> FaceDataset:
    """The training dataset of the tiny HIH config, its codec resized to the layout's points."""
    config = load_config(CONFIG)
    params = config.model.model_copy(update={"num_points": get_layout(layout).num_points})
    return FaceDataset(
        records, root, params.make_codec(), config.crop_spec, config.augment, seed=0, cache_images=cache_images
    )


def dataset_epoch(data: FaceDataset, epoch: int) -> float:
    """Seconds for one epoch of plain __getitem__ calls."""
    data.set_epoch(epoch)
    start = time.perf_counter()
    for index in range(len(data)):
        data[index]
    return time.perf_counter() - start


def floor_epoch(data: FaceDataset) -> float:
    """Seconds for the bare cost of one epoch: decode each image and warp it once to the crop size."""
    jobs = [(str(data.root / r.image_path), data.crop_spec.matrix(r.bbox)) for r in data.records]
    size = (data.crop_spec.size, data.crop_spec.size)
    start = time.perf_counter()
    for path, matrix in jobs:
        cv2.warpAffine(cv2.imread(path, cv2.IMREAD_COLOR), matrix, size, flags=cv2.INTER_LINEAR)
    return time.perf_counter() - start


@contextmanager
def timed_stages(data: FaceDataset) -> Iterator[dict[str, float]]:
    """Wrap the stages __getitem__ calls (as the modules and the instance see them) with timers."""
    spent: dict[str, float] = {}

    def timer(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

        return timed

    module_stages = {
        "decode": (dataset_module, "read_rgb"),
        "warp": (geometry, "warp_image"),
        "to_input": (dataset_module, "crop_to_input"),
    }
    originals = {name: getattr(module, attr) for name, (module, attr) in module_stages.items()}
    for name, (module, attr) in module_stages.items():
        setattr(module, attr, timer(name, originals[name]))
    data.codec.encode = timer("encode", data.codec.encode)
    data._photometric = timer("photometric", data._photometric)
    try:
        yield spent
    finally:
        for name, (module, attr) in module_stages.items():
            setattr(module, attr, originals[name])
        del data.codec.encode, data._photometric


def bench_layout(layout: str, faces: int, size: int, passes: int, workdir: Path) -> dict[str, object]:
    """Write `faces` synthetic faces in the layout's native format, read them, time the dataset and the floor."""
    root = workdir / layout
    synthesize(root, faces - faces // 4, faces // 4, seed=0, image_size=size, progress=False, layout=layout)
    records = read_dataset(LAYOUT_DATASETS[layout], root)
    data = make_dataset(records, root, layout)
    cached = make_dataset(records, root, layout, cache_images=True)
    data[0]  # warm-up: first-call costs (codec tables, OpenCV init) are not per-sample costs
    dataset_epoch(cached, 0)  # decodes every image once; later epochs read them from memory
    # Alternate the three measurements and keep the median epoch of each: the machine is shared, and drift or a
    # neighbour's burst then hits both sides alike instead of whichever ran at that moment.
    dataset_times, floor_times, cached_times = [], [], []
    for epoch in range(passes):
        dataset_times.append(dataset_epoch(data, epoch))
        floor_times.append(floor_epoch(data))
        cached_times.append(dataset_epoch(cached, epoch + 1))
    dataset_seconds, floor_seconds = statistics.median(dataset_times), statistics.median(floor_times)
    with timed_stages(data) as spent:
        instrumented = dataset_epoch(data, passes)
    per_sample = {name: round(1e3 * value / len(data), 3) for name, value in sorted(spent.items())}
    per_sample["other"] = round(1e3 * (instrumented - sum(spent.values())) / len(data), 3)
    samples_per_s, floor_per_s = len(data) / dataset_seconds, len(data) / floor_seconds
    return {
        "benchmark": "data_pipeline",
        "layout": layout,
        "dataset": LAYOUT_DATASETS[layout],
        "image_size": size,
        "crop_size": data.crop_spec.size,
        "samples": len(data) * passes,
        "samples_per_s": round(samples_per_s, 1),
        "floor_per_s": round(floor_per_s, 1),
        "ratio": round(floor_per_s / samples_per_s, 2),
        "cached_samples_per_s": round(len(data) / statistics.median(cached_times), 1),
        "ms_per_sample": per_sample,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=64, help="Synthetic faces per layout (3/4 train, 1/4 test).")
    parser.add_argument("--passes", type=int, default=5, help="Timed epochs of each side (the median counts).")
    parser.add_argument("--size", type=int, default=256, help="Source image side in pixels.")
    parser.add_argument("--layouts", default="68,98,29,19", help="Comma-separated layouts.")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one DataLoader worker: no hidden thread pools in OpenCV or torch
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        for layout in args.layouts.split(","):
            print(json.dumps(bench_layout(layout, args.faces, args.size, args.passes, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
