"""Synthetic face rendering throughput: render N faces into a temporary 300W folder, print one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from landmarkflow.data.synthetic import synthesize


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the render workers, once the pool closes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="Faces to render (80%% train, 20%% test).")
    parser.add_argument("--size", type=int, default=256, help="Image side in pixels.")
    parser.add_argument("--seed", type=int, default=0, help="Renderer seed.")
    parser.add_argument("--workers", type=int, default=None, help="Render processes (default: synthesize's choice).")
    args = parser.parse_args()
    num_test = args.n // 5
    with tempfile.TemporaryDirectory(prefix="bench_synthetic_") as tmp:
        cpu_start = _cpu_seconds()
        report = synthesize(
            Path(tmp) / "synthetic",
            args.n - num_test,
            num_test,
            seed=args.seed,
            image_size=args.size,
            progress=False,
            workers=args.workers,
        )
        cpu_seconds = _cpu_seconds() - cpu_start
    result = {
        "benchmark": "synthetic_render",
        "images": report.images,
        "size": args.size,
        "workers": args.workers,
        "seconds": round(report.seconds, 4),
        "images_per_s": round(report.images_per_s, 1),
        "cpu_seconds": round(cpu_seconds, 4),  # with the workers; wall time suffers on a busy machine
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
