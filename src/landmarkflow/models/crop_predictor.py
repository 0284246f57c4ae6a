"""The one shape every predictor has, whether PyTorch, onnxruntime or a post-step outside the graph (LGCN's shape
fit): numpy crops in, crop points out. Free of torch, so that torch-free callers can name it as well."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CropPredictor = Callable[[np.ndarray], np.ndarray]
"""(N, 3, S, S) float32 RGB crops in [0, 1] -> (N, K, 2) landmarks in crop pixels."""
