"""KFP component: gpu_requests."""
