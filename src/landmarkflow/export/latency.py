"""Wall-clock latency of crops -> crop points functions, the way `predict` calls them: numpy in, numpy out.

Timing host to host includes each runtime's copies to and from the GPU and its synchronisation, so PyTorch eager,
onnxruntime and a TensorRT engine are compared on what a caller waits for.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from landmarkflow.models.crop_predictor import CropPredictor


def median_ms(call: Callable[[], object], runs: int, warmup: int) -> float:
    """Median wall time of `call` in milliseconds after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(times), 3)


def latency_table(
    predictors: Mapping[str, CropPredictor],
    input_size: int,
    batches: Sequence[int],
    runs: int = 50,
    warmup: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """`{"<name>_ms_batch<N>": median ms}` for every predictor at every batch size, on the same random crops."""
    rng = np.random.default_rng(seed)
    table = {}
    for batch in batches:
        crops = rng.random((batch, 3, input_size, input_size), dtype=np.float32)
        for name, predict in predictors.items():
            table[f"{name}_ms_batch{batch}"] = median_ms(lambda p=predict, c=crops: p(c), runs, warmup)
    return table
