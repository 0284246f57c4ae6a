"""What going distributed costs on this CPU: training images/s with 1 process and with 2 torchrun (gloo) ranks on the
same global batch, and the time of the gradient all-reduce.

Each run is the real trainer (Trainer.fit: its data path, DDP wrapper and per-epoch images/s) on synthetic faces;
1 process gets all the threads, 2 processes get half each (set --threads to the cores). All-reduce: the latency of
every DDP bucket, from the moment backward hands it over to the moment the reduced gradient is back (a comm hook
doing what DDP's default hook does: divide by the world size, all-reduce), summed per step; and, on its own, one
blocking all-reduce of a tensor the size of all gradients. Prints one JSON object per run, then a summary.

    .venv/bin/python bench/bench_ddp.py [--config configs/hih_synthetic_tiny.yaml] [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from landmarkflow.config import load_config
from landmarkflow.data.formats.synthetic import read_synthetic
from landmarkflow.data.synthetic import synthesize
from landmarkflow.models.zoo import build_model
from landmarkflow.train.distributed import init_distributed, rank_batch_size, shutdown
from landmarkflow.train.trainer import Trainer, seed_everything

FACES = 160
ALLREDUCE_REPEATS = 20


def _bucket_timer(latencies: list[float]) -> Any:
    """A DDP comm hook: DDP's default all-reduce (divide by the world size, sum over ranks), timed per bucket."""

    def hook(state, bucket):  # unannotated: DDP refuses the string annotations that __future__ makes
        started = time.perf_counter()
        buffer = bucket.buffer().div_(dist.get_world_size())

        def done(future: torch.futures.Future[list[torch.Tensor]]) -> torch.Tensor:
            latencies.append(time.perf_counter() - started)
            return future.value()[0]

        return dist.all_reduce(buffer, async_op=True).get_future().then(done)

    return hook


def _blocking_allreduce_ms(numel: int) -> float:
    """Median of blocking all-reduces of one float32 tensor of `numel` elements."""
    tensor = torch.ones(numel)
    times = []
    for _ in range(ALLREDUCE_REPEATS + 2):
        dist.barrier()
        started = time.perf_counter()
        dist.all_reduce(tensor)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times[2:])


def worker(config_path: Path, root: Path, epochs: int, result: Path) -> None:
    """One rank (or the one process): train `epochs` epochs, rank 0 writes the numbers to `result`."""
    env = init_distributed()
    config = load_config(config_path, {"train.epochs": epochs})
    seed_everything(config.train.seed)
    records = [r for r in read_synthetic(root) if r.split == "train"]
    model = build_model(config.model)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, model, records, [], root, Path(out), env)
        latencies: list[float] = []
        if env.distributed:
            trainer.net.register_comm_hook(None, _bucket_timer(latencies))
        history = trainer.fit()
    steps = trainer.steps_per_epoch * epochs
    numel = sum(p.numel() for p in model.parameters() if p.requires_grad)
    blocking = _blocking_allreduce_ms(numel) if env.distributed else None
    if env.is_main:
        timed = history.images_per_s[1:] or history.images_per_s  # the first epoch warms up
        images_per_s = statistics.median(timed)
        numbers = {
            "benchmark": "ddp_scaling",
            "config": str(config_path),
            "model": config.model.name,
            "processes": env.world_size,
            "threads_per_process": torch.get_num_threads(),
            "global_batch": config.train.batch_size,
            "rank_batch": rank_batch_size(config.train.batch_size, env),
            "steps_per_epoch": trainer.steps_per_epoch,
            "epochs_timed": len(timed),
            "images_per_s": images_per_s,
            "step_ms": 1000 * config.train.batch_size / images_per_s,
            "gradient_mb": 4 * numel / 2**20,
            "allreduce_buckets_per_step": len(latencies) / steps if env.distributed else 0,
            "allreduce_ms_per_step": 1000 * sum(latencies) / steps if env.distributed else 0.0,
            "blocking_allreduce_ms": blocking,
        }
        result.write_text(json.dumps(numbers))
    shutdown(env)


def run(config: Path, root: Path, epochs: int, processes: int, threads: int, folder: Path) -> dict[str, Any]:
    result = folder / f"{config.stem}-{processes}.json"
    this = [str(Path(__file__).resolve()), "--worker", "--config", str(config), "--root", str(root)]
    this += ["--epochs", str(epochs), "--result", str(result)]
    launcher = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run"]
    if processes > 1:
        launcher += ["--standalone", f"--nproc_per_node={processes}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // processes))}
    subprocess.run([*launcher, *this], check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, action="append")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="cores to share out: 1 process gets all")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    configs = args.config or [Path("configs/hih_synthetic_tiny.yaml")]
    if args.worker:
        worker(configs[0], args.root, args.epochs, args.result)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        synthesize(root, num_train=FACES, num_test=8, seed=0, progress=False)
        for config in configs:
            one, two = (run(config, root, args.epochs, n, args.threads, Path(tmp)) for n in (1, 2))
            print(json.dumps(one))
            print(json.dumps(two))
            summary = {
                "benchmark": "ddp_scaling_summary",
                "config": str(config),
                "speedup_2_over_1": two["images_per_s"] / one["images_per_s"],
                "allreduce_share_of_step": two["allreduce_ms_per_step"] / two["step_ms"],
            }
            print(json.dumps(summary))


if __name__ == "__main__":
    main()
