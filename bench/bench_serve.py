"""`landmarkflow serve` under load: p50/p99 latency and requests/s at 1 and 8 concurrent clients, with a given face
box and with face detection, on a real photo (skimage's astronaut, 512 x 512 PNG) over loopback HTTP.

Prints one JSON object. Usage:
    .venv/bin/python bench/bench_serve.py MODEL [--requests 200] [--cores 0,1]
MODEL as `serve --model` takes it. The server runs pinned to `--cores` (taskset, where there is one); the clients
run in this process (keep-alive connections, one per client thread) and share the machine with it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
from skimage import data

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import serve_on_free_port  # noqa: E402

ASTRONAUT_BOX = "175,70,268,163"
CONCURRENCY = (1, 8)


def load(port: int, body: bytes, path: str, clients: int, per_client: int) -> dict[str, float]:
    """`clients` threads, each sending `per_client` requests on its own keep-alive connection."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        for _ in range(per_client):
            start = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "image/png"})
            response = connection.getresponse()
            answer = response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200 or not json.loads(answer)["faces"]:
                with lock:
                    failures.append(f"{response.status}: {answer[:200]!r}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} request(s) failed, first: {failures[0]}")
    ms = np.array(latencies) * 1000
    return {
        "requests": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "requests_per_s": round(len(ms) / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="what `serve --model` takes: .onnx, bundle folder or models:/ URI")
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement (all clients together)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--cores", default="0,1", help="CPUs the server is pinned to (taskset -c); '' = no pinning")
    args = parser.parse_args()
    body = cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = ["taskset", "-c", args.cores] if args.cores and shutil.which("taskset") else []
        server, url = serve_on_free_port(
            ["--model", args.model], Path(tmp) / "serve.log", {}, prefix=prefix, timeout_s=180, cwd=Path.cwd()
        )
        port = urlsplit(url).port
        with server:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/v1/model")
            model = json.loads(connection.getresponse().read())
            result: dict[str, object] = {
                "benchmark": "serve",
                "model": args.model,
                "model_name": model["model"],
                "input_size": model["input_size"],
                "num_points": model["num_points"],
                "backend": model["backend"],
                "image": "skimage astronaut 512x512 PNG",
                "server_cores": args.cores or f"all ({os.cpu_count()})",
                "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
            }
            for label, path in (("given_box", f"/v1/landmarks?bbox={ASTRONAUT_BOX}"), ("detect", "/v1/landmarks")):
                load(port, body, path, 1, args.warmup)
                for clients in CONCURRENCY:
                    result[f"{label}_clients{clients}"] = load(port, body, path, clients, args.requests // clients)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
