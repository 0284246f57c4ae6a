"""Deployment artifacts: ONNX export with onnxruntime parity, TensorRT engines on a GPU."""
