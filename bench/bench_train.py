"""Training throughput (images/s) through the real data path: synthetic faces -> FaceDataset -> model.

Prints one JSON object per config. Usage:
    .venv/bin/python bench/bench_train.py [--config configs/hih_synthetic_tiny.yaml] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from landmarkflow.config import load_config
from landmarkflow.data.dataset import FaceDataset
from landmarkflow.data.formats.synthetic import read_synthetic
from landmarkflow.data.synthetic import synthesize
from landmarkflow.models.zoo import build_model
from landmarkflow.train.trainer import build_optimizer


def bench(config_path: Path, root: Path, steps: int, warmup: int) -> dict:
    config = load_config(config_path)
    model = build_model(config.model)
    records = [r for r in read_synthetic(root) if r.split == "train"]
    dataset = FaceDataset(records, root, model.codec, config.crop_spec, config.augment)
    loader = DataLoader(dataset, batch_size=config.train.batch_size, shuffle=True, num_workers=config.train.num_workers)
    optimizer = build_optimizer(model, config)
    model.train()
    seen, started, data_wait = 0, 0.0, 0.0
    batches = iter(loader)
    for step in range(warmup + steps):
        fetch = time.perf_counter()
        batch = next(batches)
        if step == warmup:
            started, seen, data_wait = time.perf_counter(), 0, 0.0
        data_wait += time.perf_counter() - fetch
        outputs = model(batch["image"])
        loss, _ = model.loss(outputs, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += batch["image"].shape[0]
    seconds = time.perf_counter() - started
    return {
        "benchmark": "train_throughput",
        "config": str(config_path),
        "model": config.model.name,
        "input_size": config.model.input_size,
        "batch_size": config.train.batch_size,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "images_per_s": seen / seconds,
        "data_wait_fraction": data_wait / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, action="append")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        synthesize(root, num_train=256, num_test=8, seed=0, progress=False)
        for config in args.config or [Path("configs/hih_synthetic_tiny.yaml")]:
            print(json.dumps(bench(config, root, args.steps, args.warmup)))


if __name__ == "__main__":
    main()
