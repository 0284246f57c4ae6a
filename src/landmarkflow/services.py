"""The network services a pipeline step may use, and the environment variables through which it reaches them.

On a cluster one Kubernetes Secret sets these variables in every step's pod (kfp-kubernetes `use_secret_as_env`);
a local run sets them itself. Credentials live in the environment only: never in pipeline parameters, logs,
MLflow params or compiled YAML.
"""

from __future__ import annotations

TRACKING_URI = "MLFLOW_TRACKING_URI"
"""The MLflow tracking server (http://...): runs, metrics, the registry, and artifacts proxied to its S3."""
S3_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
S3_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
S3_ENDPOINT = "AWS_ENDPOINT_URL"
"""An S3-compatible endpoint (SeaweedFS, MinIO); unset for AWS itself. boto3 and s3fs read it directly."""

SECRET_ENV: tuple[str, ...] = (TRACKING_URI, S3_ACCESS_KEY, S3_SECRET_KEY, S3_ENDPOINT)
"""Every variable the Secret provides, under its own name as the Secret's key."""
CREDENTIALS: tuple[str, ...] = (S3_ACCESS_KEY, S3_SECRET_KEY)
"""Variables whose values must never be printed or logged."""
