"""The container image every component runs in on a cluster (built from components/Dockerfile).

`make pipeline-compile` sets LANDMARKFLOW_IMAGE to the image `make image` built, tagged with its commit.
"""

import os

# The name contains "python" so kfp.local's subprocess runner accepts it as a lightweight base image.
IMAGE = os.environ.get("LANDMARKFLOW_IMAGE", "ghcr.io/landmarkflow/landmarkflow-python:0.1.0")
