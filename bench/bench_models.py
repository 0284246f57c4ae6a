"""Model cost on this CPU: parameters, GFLOPs, training images/s, PyTorch and onnxruntime inference latency.

Prints one JSON object with an entry per config. GFLOPs are torch.utils.flop_counter counts for one forward pass
at batch 1, which count 2 FLOPs per multiply-accumulate (so GMACs = GFLOPs / 2; the HIH paper's "G" are GMACs).
Training images/s is forward + loss + backward + Adam step on random crops with real codec targets; the timings
take a few steps after a warm-up, fewer for large models (each measurement stops after --budget-s seconds).

    .venv/bin/python bench/bench_models.py [--config configs/hih_synthetic_tiny.yaml ...] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from landmarkflow.config import ExperimentConfig, load_config
from landmarkflow.export.onnx import export_onnx
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.measure import build_on_meta, forward_gflops
from landmarkflow.models.zoo import build_model
from landmarkflow.runtime import DeployInfo, run_onnx
from landmarkflow.train.trainer import autocast_for, build_optimizer, mixed_precision_dtype

DEFAULT_CONFIGS = [
    Path(f"configs/{model}_{size}.yaml")
    for model in ("hih", "dsat", "lgcn", "rdfn")
    for size in ("synthetic_tiny", "300w")
]
LATENCY_BATCHES = (1, 16)


def timed_ms(run: Callable[[], object], iterations: int, budget_s: float) -> float:
    """Median wall time of `run` in ms after one warm-up call; stops early once `budget_s` is spent (>= 1 call)."""
    run()
    times: list[float] = []
    spent = 0.0
    while len(times) < iterations and (not times or spent < budget_s):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return 1000.0 * float(np.median(times))


def random_batch(model: LandmarkModel, batch: int, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Random crops with the codec's targets for random in-crop landmarks (cost does not depend on content)."""
    rng = np.random.default_rng(seed)
    size = model.input_size
    encoded = [
        model.codec.encode(rng.uniform(0, size - 1, (model.num_points, 2)), np.ones(model.num_points, bool))
        for _ in range(batch)
    ]
    targets = {name: torch.from_numpy(np.stack([e[name] for e in encoded])) for name in encoded[0]}
    return torch.from_numpy(rng.random((batch, 3, size, size), dtype=np.float32)), targets


def train_images_per_s(model: LandmarkModel, config: ExperimentConfig, steps: int, budget_s: float) -> float:
    """The trainer's step (its optimiser, its autocast) on one random batch, without the data loader."""
    batch = config.train.batch_size
    images, targets = random_batch(model, batch)
    optimizer = build_optimizer(model, config)
    cpu = torch.device("cpu")
    amp_dtype = mixed_precision_dtype(config.train.amp, cpu)
    model.train()

    def step() -> None:
        with autocast_for(amp_dtype, cpu):
            loss, _ = model.loss(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return batch / (timed_ms(step, steps, budget_s) / 1000.0)


def latencies(
    model: LandmarkModel, config: ExperimentConfig, threads: int, iterations: int, budget_s: float
) -> dict[str, float]:
    info = DeployInfo(
        model=config.model.name,
        layout=config.data.layout,
        num_points=config.model.num_points,
        input_size=config.model.input_size,
        box_scale=config.data.box_scale,
    )
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = export_onnx(model, Path(tmp) / "model.onnx", info, opset=config.export.opset)
        out["onnx_export_s"] = round(time.perf_counter() - started, 2)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model.eval()
        for batch in LATENCY_BATCHES:
            images = np.random.default_rng(batch).random((batch, 3, model.input_size, model.input_size), np.float32)
            tensor = torch.from_numpy(images)
            with torch.no_grad():
                out[f"torch_ms_batch{batch}"] = timed_ms(lambda t=tensor: model.predict(t), iterations, budget_s)
            out[f"onnxruntime_ms_batch{batch}"] = timed_ms(lambda x=images: run_onnx(session, x), iterations, budget_s)
    return {key: round(value, 2) for key, value in out.items()}


def bench(config_path: Path, threads: int, steps: int, iterations: int, budget_s: float) -> dict:
    config = load_config(config_path)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model)
    flops = forward_gflops(build_on_meta(config.model))
    model.to(memory_format=model.memory_format())  # as the trainer and the evaluation run it
    return {
        "config": str(config_path),
        "model": config.model.model_dump(mode="json"),
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 4),
        "gflops": round(flops, 3),
        "gmacs": round(flops / 2, 3),
        "train_batch": config.train.batch_size,
        "train_images_per_s": round(train_images_per_s(model, config, steps, budget_s), 2),
        **latencies(model, config, threads, iterations, budget_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, action="append", help="experiment YAML (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up)")
    parser.add_argument("--iterations", type=int, default=10, help="timed inference calls per batch size")
    parser.add_argument("--budget-s", type=float, default=8.0, help="stop a measurement after this many seconds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {
        "bench": "models",
        "host": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
        "flops_unit": "GFLOPs = 2 x GMACs, one forward pass at batch 1 (torch.utils.flop_counter)",
        "models": [
            bench(path, args.threads, args.steps, args.iterations, args.budget_s)
            for path in (args.config or DEFAULT_CONFIGS)
        ],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
