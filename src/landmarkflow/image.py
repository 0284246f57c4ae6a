"""The container image every pipeline step and every training node runs in on a cluster (components/Dockerfile).

`make pipeline-compile` sets LANDMARKFLOW_IMAGE to the image `make image` built, tagged with its commit.
"""

from __future__ import annotations

import os

IMAGE_ENV = "LANDMARKFLOW_IMAGE"
DEFAULT_IMAGE = "ghcr.io/landmarkflow/landmarkflow-python:0.1.0"
"""The name contains "python" so kfp.local's subprocess runner accepts it as a lightweight base image."""


def image() -> str:
    """The image named by LANDMARKFLOW_IMAGE, else the default."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
