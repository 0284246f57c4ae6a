"""Every GPU measurement of the project in one run, written as one JSON file (bench/gpu_check.sh calls this).

- tensorrt_engines: a small model (default: the pipeline's tiny HIH) trained on the GPU on synthetic faces, exported,
  and put through export's own GPU checks (export/gpu_checks.py): FP32 and FP16 engines, each |ΔNME| against
  onnxruntime on the test split and its tolerance, latency at the config's batch sizes (1, 16) of TensorRT,
  onnxruntime CUDA and PyTorch eager, host to host.
- train_images_per_s: each paper config (HIH, DSAT, LGCN, RDFN on 300W) trained by the project's Trainer on one GPU
  at its paper batch size with AMP and channels_last, on synthetic faces in the 300W format; images/s over the
  epochs after the first (which carries start-up and cuDNN autotuning).
- nccl_all_reduce: a NCCL process group over this machine's GPUs (one process per GPU), all-reducing a tensor the
  size of HIH 300W's gradients: it must sum exactly, and its time is reported.

Without a CUDA device nothing is measured: the JSON says for each measurement that it was skipped and why, and the
exit status is 0. A measurement that fails is recorded with its error, the others still run, and the exit status
is 1. A soft time budget skips (and says so) what would start after it is spent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = ("hih_300w", "dsat_300w", "lgcn_300w", "rdfn_300w")


def environment() -> dict[str, Any]:
    import onnxruntime as ort

    from landmarkflow.export.tensorrt import precision_unavailable, tensorrt_available

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "tensorrt": tensorrt_available()[1],
        "fp16_engine": precision_unavailable("fp16") or "nvidia-modelopt present",
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "cpus": os.cpu_count(),
    }


def synthetic_faces(root: Path, num_train: int, num_test: int) -> tuple[list, list]:
    """Synthetic faces in the 300W folder format (68 points), split into train and test records."""
    from landmarkflow.data.formats.synthetic import read_synthetic
    from landmarkflow.data.synthetic import synthesize

    synthesize(root, num_train=num_train, num_test=num_test, seed=0, progress=False)
    records = read_synthetic(root)
    return [r for r in records if r.split == "train"], [r for r in records if r.split == "test"]


def train(config_path: Path, overrides: dict[str, Any], train_records: list, root: Path, out_dir: Path):
    """The project's Trainer on GPU 0, no MLflow run; returns (model, config, history)."""
    from landmarkflow.config import load_config
    from landmarkflow.models.zoo import build_model
    from landmarkflow.train.distributed import DistEnv
    from landmarkflow.train.trainer import Trainer, seed_everything

    config = load_config(config_path, {"data.root": str(root), "train.amp": True, **overrides})
    seed_everything(config.train.seed)
    model = build_model(config.model)
    env = DistEnv(rank=0, local_rank=0, world_size=1, device=torch.device("cuda", 0))
    out_dir.mkdir(parents=True, exist_ok=True)
    history = Trainer(config, model, train_records, [], root, out_dir, env).fit()
    return model, config, history


def tensorrt_engines(args: argparse.Namespace, data: tuple[list, list], root: Path, work: Path) -> dict[str, Any]:
    from dataclasses import asdict

    from landmarkflow.evaluation.metrics import mean_nme
    from landmarkflow.evaluation.predictions import predict_records, torch_predictor
    from landmarkflow.export.gpu_checks import run_gpu_checks
    from landmarkflow.export.onnx import export_onnx
    from landmarkflow.export.tensorrt import tensorrt_available
    from landmarkflow.layouts import get_layout
    from landmarkflow.runtime import ONNX_FILE
    from landmarkflow.steps.exporting import deploy_info, onnx_predictor

    available, reason = tensorrt_available()
    if not available:
        return {"skipped": reason}
    train_records, test_records = data
    overrides = {"train.epochs": args.engine_epochs, "train.milestones": [], "train.num_workers": args.workers}
    started = time.perf_counter()
    model, config, history = train(args.engine_config, overrides, train_records, root, work / "engine_model")
    trained_s = time.perf_counter() - started
    out = work / "export"
    onnx_path = export_onnx(model.cpu(), out / ONNX_FILE, deploy_info(config), opset=config.export.opset)
    layout = get_layout(config.data.layout)

    def nme_of(predict: Callable) -> float:
        preds = predict_records(predict, test_records, root, config.crop_spec, 32)
        return mean_nme(preds, test_records, layout, config.data.normaliser)

    torch_nme = nme_of(torch_predictor(model))
    onnx_nme = nme_of(onnx_predictor(onnx_path))
    checks = run_gpu_checks(model, config, onnx_path, out, onnx_nme, nme_of)
    return {
        "config": str(args.engine_config),
        "train_epochs": args.engine_epochs,
        "train_images": len(train_records),
        "test_images": len(test_records),
        "train_seconds": round(trained_s, 1),
        "final_train_loss": history.train_loss[-1],
        "torch_cpu_nme": torch_nme,
        "onnxruntime_nme": onnx_nme,
        "engines": [asdict(check) for check in checks.engines],
        "latency_ms": checks.latency_ms,
        "not_timed": checks.not_timed,
    }


def train_images_per_s(args: argparse.Namespace, data: tuple[list, list], root: Path, work: Path) -> dict[str, Any]:
    from landmarkflow.train.trainer import mixed_precision_dtype

    results = {}
    for name in args.paper_configs:
        overrides = {
            "train.epochs": args.throughput_epochs,
            "train.max_steps_per_epoch": args.throughput_steps,
            "train.milestones": [],
            "train.num_workers": args.workers,
        }
        started = time.perf_counter()
        _, config, history = train(REPO / "configs" / f"{name}.yaml", overrides, data[0], root, work / name)
        warm = history.images_per_s[1:] or history.images_per_s
        results[name] = {
            "batch_size": config.train.batch_size,
            "input_size": config.model.input_size,
            "amp_dtype": str(mixed_precision_dtype(config.train.amp, torch.device("cuda"))),
            "steps_per_epoch": min(args.throughput_steps, len(data[0]) // config.train.batch_size),
            "epochs": args.throughput_epochs,
            "images_per_s": sum(warm) / len(warm),
            "images_per_s_by_epoch": history.images_per_s,
            "seconds": round(time.perf_counter() - started, 1),
        }
        torch.cuda.empty_cache()
    return results


def _all_reduce_rank(rank: int, world: int, port: int, numel: int, runs: int, result: Any) -> None:
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        tensor = torch.full((numel,), float(rank + 1), device="cuda")
        dist.all_reduce(tensor)
        expected = world * (world + 1) / 2
        exact = bool((tensor == expected).all().item())
        torch.cuda.synchronize()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            dist.all_reduce(tensor)
            torch.cuda.synchronize()
            times.append(1000 * (time.perf_counter() - start))
        if rank == 0:
            result.put({"exact_sum": exact, "median_ms": sorted(times)[len(times) // 2]})
    finally:
        dist.destroy_process_group()


def nccl_all_reduce(args: argparse.Namespace, data: tuple[list, list], root: Path, work: Path) -> dict[str, Any]:
    import socket

    import torch.distributed as dist
    import torch.multiprocessing as mp

    from landmarkflow.config import load_config
    from landmarkflow.models.zoo import build_model

    if not dist.is_nccl_available():
        return {"skipped": "this torch build has no NCCL"}
    numel = sum(p.numel() for p in build_model(load_config(REPO / "configs" / "hih_300w.yaml").model).parameters())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    world = torch.cuda.device_count()
    context = mp.get_context("spawn")
    result = context.SimpleQueue()
    mp.start_processes(_all_reduce_rank, (world, port, numel, 20, result), nprocs=world, start_method="spawn")
    measured = result.get()
    return {
        "world_size": world,
        "numel": numel,
        "megabytes": round(numel * 4 / 2**20, 1),
        **measured,
        "note": "one GPU: NCCL initialises and reduces, but no bytes cross a link" if world == 1 else "",
    }


MEASUREMENTS = {
    "tensorrt_engines": tensorrt_engines,
    "train_images_per_s": train_images_per_s,
    "nccl_all_reduce": nccl_all_reduce,
}
"""Each measurement, in the order they run: (args, (train, test) records, data root, scratch folder) -> its JSON."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--budget-s", type=float, default=450, help="no measurement starts after this many seconds")
    parser.add_argument("--train-images", type=int, default=1600, help="synthetic train faces (test: a fifth)")
    parser.add_argument("--workers", type=int, default=min(12, max(1, (os.cpu_count() or 2) - 2)))
    parser.add_argument("--engine-config", type=Path, default=REPO / "configs" / "hih_synthetic_tiny.yaml")
    parser.add_argument("--engine-epochs", type=int, default=8)
    parser.add_argument("--paper-configs", nargs="+", default=list(PAPER_CONFIGS))
    parser.add_argument("--throughput-epochs", type=int, default=3)
    parser.add_argument("--throughput-steps", type=int, default=100, help="optimiser steps per epoch at most")
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": "gpu_check", "environment": environment(), "measurements": {}}
    failed = False
    if not torch.cuda.is_available():
        reason = "no CUDA device (torch.cuda.is_available() is False)"
        report["measurements"] = {name: {"skipped": reason} for name in MEASUREMENTS}
    else:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            root = Path(tmp) / "synthetic"
            data = synthetic_faces(root, args.train_images, max(args.train_images // 5, 8))
            for name, measure in MEASUREMENTS.items():
                spent = time.perf_counter() - started
                if spent > args.budget_s:
                    report["measurements"][name] = {"skipped": f"time budget of {args.budget_s:.0f} s spent"}
                    continue
                begun = time.perf_counter()
                try:
                    outcome = measure(args, data, root, Path(tmp))
                except Exception as exc:
                    failed = True
                    outcome = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
                outcome["seconds"] = round(time.perf_counter() - begun, 1)
                report["measurements"][name] = outcome
                print(f"{name}: {outcome['seconds']} s", file=sys.stderr)
    report["seconds"] = round(time.perf_counter() - started, 1)
    from landmarkflow.fileio import atomic_write_text

    atomic_write_text(args.out, json.dumps(report, indent=2, default=str))
    print(json.dumps(report["measurements"], default=str)[:4000])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
