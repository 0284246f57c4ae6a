#!/usr/bin/env bash
# Every GPU measurement in one run, in under 8 minutes on one H200: TensorRT FP32/FP16 engines' ΔNME against
# onnxruntime, latency at batch 1 and 16 of TensorRT / onnxruntime CUDA / PyTorch eager, training images/s of each
# paper config (HIH, DSAT, LGCN, RDFN on 300W) at its paper batch size, and a NCCL all-reduce. Writes one JSON file.
# Without a GPU it exits 0 at once, and the JSON says that every measurement was skipped and why.
#
# Usage: bench/gpu_check.sh [OUT.json] [extra gpu_check.py options]   (default OUT: gpu_check.json)
#        PYTHON=/path/to/python bench/gpu_check.sh ...                 (default: the project's .venv)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-gpu_check.json}"
shift || true
python="${PYTHON:-$repo/.venv/bin/python}"
export DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1
export PYTHONUNBUFFERED=1
exec "$python" "$repo/bench/gpu_check.py" --out "$out" "$@"
