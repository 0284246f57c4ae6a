"""Run a serialized TensorRT engine with torch CUDA tensors as its buffers (no pycuda, no host staging of our own).

The engine is export's (export/tensorrt.py): one input (N, 3, S, S) float32 and the landmarks output (N, K, 2)
float32 (LGCN's engine also outputs its heatmaps: every output gets a buffer, the landmarks are returned), N dynamic
within the optimisation profile; a larger batch runs in chunks of the profile's maximum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from landmarkflow.export.tensorrt import tensorrt_available


class EngineRunner:
    """One engine, one execution context, on torch's current CUDA stream of device `device`."""

    def __init__(self, path: str | Path, device: int = 0, output: str = "landmarks") -> None:
        available, reason = tensorrt_available()
        if not available:
            raise RuntimeError(f"{path}: cannot run a TensorRT engine here: {reason}")
        import tensorrt as trt

        self.path = Path(path)
        self.device = torch.device("cuda", device)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        with torch.cuda.device(self.device):
            self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise ValueError(
                    f"{self.path}: TensorRT {trt.__version__} cannot load this engine on "
                    f"{torch.cuda.get_device_name(self.device)} (built by another TensorRT version or for another GPU?)"
                )
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or output not in self.outputs:
            found = f"found inputs {inputs} and outputs {self.outputs}"
            raise ValueError(f"{self.path}: expected one input and an output {output!r}, {found}")
        (self.input_name,), self.output_name = inputs, output
        for name in names:
            if self.engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise ValueError(f"{self.path}: tensor {name!r} is {self.engine.get_tensor_dtype(name)}, not float32")
        self.max_batch = int(self.engine.get_tensor_profile_shape(self.input_name, 0)[2][0])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) float32 on the engine's device -> (N, K, 2) float32 there, ordered on the current stream."""
        if images.device != self.device or images.dtype != torch.float32 or images.ndim != 4:
            raise ValueError(
                f"{self.path}: expects (N, 3, S, S) float32 on {self.device}, got {images.dtype} "
                f"{tuple(images.shape)} on {images.device}"
            )
        chunks = [self._run(part.contiguous()) for part in images.split(self.max_batch)]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def _run(self, images: torch.Tensor) -> torch.Tensor:
        if not self.context.set_input_shape(self.input_name, tuple(images.shape)):
            raise ValueError(f"{self.path}: input shape {tuple(images.shape)} is outside the engine's profile")
        buffers = {n: torch.empty(tuple(self.context.get_tensor_shape(n)), device=self.device) for n in self.outputs}
        self.context.set_tensor_address(self.input_name, images.data_ptr())
        for name, buffer in buffers.items():
            self.context.set_tensor_address(name, buffer.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise RuntimeError(f"{self.path}: TensorRT execution failed (see the TensorRT log)")
        return buffers[self.output_name]

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """The `CropPredictor` shape: numpy crops in, numpy crop points out (copies to and from the GPU)."""
        images = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)).to(self.device)
        return self(images).cpu().numpy()
