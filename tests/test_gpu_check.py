"""bench/gpu_check.sh without a GPU (CUDA hidden, so it is the same on a GPU machine): it exits 0 quickly and its JSON
names every measurement as skipped, with the reason. The measurements themselves need the GPU (see the script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_skips_every_measurement_without_a_gpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_check.sh"), str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "gpu_check" and report["environment"]["gpus"] == []
    assert set(report["measurements"]) == {"tensorrt_engines", "train_images_per_s", "nccl_all_reduce"}
    for name, outcome in report["measurements"].items():
        assert outcome == {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}, name
    assert "no CUDA device" in report["environment"]["tensorrt"]
