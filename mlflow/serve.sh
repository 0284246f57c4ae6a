#!/usr/bin/env bash
# A team MLflow tracking server: database backend, artifacts proxied to an object store.
set -euo pipefail
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (postgresql://... or sqlite:///...)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (s3://bucket/prefix or a folder)}"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI" || true
exec mlflow server \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" \
  --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-localhost:*,127.0.0.1:*,mlflow:*,mlflow.mlops.svc:*}"
