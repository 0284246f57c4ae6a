"""Synthetic face rendering throughput: render N faces into a temporary 300W folder, print one JSON line."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from landmarkflow.data.synthetic import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="Faces to render (80%% train, 20%% test).")
    parser.add_argument("--size", type=int, default=256, help="Image side in pixels.")
    parser.add_argument("--seed", type=int, default=0, help="Renderer seed.")
    args = parser.parse_args()
    num_test = args.n // 5
    with tempfile.TemporaryDirectory(prefix="bench_synthetic_") as tmp:
        cpu_start = time.process_time()
        report = synthesize(
            Path(tmp) / "synthetic", args.n - num_test, num_test, seed=args.seed, image_size=args.size, progress=False
        )
        cpu_seconds = time.process_time() - cpu_start
    result = {
        "benchmark": "synthetic_render",
        "images": report.images,
        "size": args.size,
        "seconds": round(report.seconds, 4),
        "images_per_s": round(report.images_per_s, 1),
        "cpu_seconds": round(cpu_seconds, 4),  # wall time suffers on a shared machine; CPU time much less
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
