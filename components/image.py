"""The container image every component runs in on a cluster (built from components/Dockerfile)."""

import os

# The name contains "python" so kfp.local's subprocess runner accepts it as a lightweight base image.
IMAGE = os.environ.get("LANDMARKFLOW_IMAGE", "ghcr.io/landmarkflow/landmarkflow-python:0.1.0")
