"""Kubeflow Pipelines components: one folder per step, each a thin wrapper over `landmarkflow.steps`."""
