"""`log_metrics`: several metrics in one batch, at one step, exactly as `log_metric` one by one would log them."""

from __future__ import annotations

import math

from mlflow.tracking import MlflowClient

from landmarkflow.tracking import log_metrics


def test_log_metrics_logs_every_value_at_its_step() -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment("metrics"))
    log_metrics(client, run.info.run_id, {"train_loss": 0.5, "val_nme": float("nan"), "lr": 1e-3}, step=2)
    log_metrics(client, run.info.run_id, {"train_loss": 0.25}, step=3)
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(history) == [(2, 0.5), (3, 0.25)]
    assert math.isnan(client.get_run(run.info.run_id).data.metrics["val_nme"])
    assert client.get_metric_history(run.info.run_id, "lr")[0].step == 2
