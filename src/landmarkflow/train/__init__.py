"""Training: a DDP-ready loop (torchrun, gloo on CPU, nccl on GPU) with checkpoints and MLflow logging."""
