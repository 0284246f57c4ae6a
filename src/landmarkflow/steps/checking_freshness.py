"""The freshness check: which models have data to learn from that they have not yet been trained on.

A scheduled run ingests the data it would train on (which gives its DVC hash) and asks the registry, per model,
what the newest version and the champion were trained on. A model is retrained when neither was trained on this
data: new data, or no version at all. A model whose champion was trained on it has nothing new to learn; one whose
newest version was trained on it and failed its gates would fail them again (training is deterministic), so it
waits for new data too instead of spending a training on every tick; one whose newest version passed them but was
never champion (its promotion cut short) is retrained. A version once champion and rolled back by hand is left
alone. `force` retrains every model regardless (a new recipe on the same data). The outcome is an MLflow run in the
dataset's data experiment, so a run that trained nothing says why where the user looks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from mlflow.tracking import MlflowClient

from landmarkflow.config import load_config
from landmarkflow.outages import tracking_step
from landmarkflow.registry import (
    CHAMPION,
    GATE_TAG,
    PROMOTED_TAG,
    ROLLED_BACK_TAG,
    VersionInfo,
    latest_version,
    version_by_alias,
)
from landmarkflow.steps.results import FreshnessResult, IngestResult
from landmarkflow.tracking import data_experiment_name, ensure_experiment, log_metrics, registered_model_name

log = logging.getLogger(__name__)
OUTCOME_TAG = "outcome"
"""The freshness run's verdict: `retrain` or `no new data`."""


@tracking_step
def check_freshness(ingested: IngestResult, configs: Sequence[str | Path], force: bool = False) -> FreshnessResult:
    """Decide per config whether its model is retrained on `ingested`'s data, and log the outcome as an MLflow run."""
    decisions = []
    for config_path in configs:
        name = registered_model_name(load_config(config_path).model.name, ingested.dataset)
        champion = version_by_alias(name, CHAMPION)
        retrain, reason = decide(ingested.data_hash, champion, latest_version(name), force)
        decisions.append(
            {
                "config": str(config_path),
                "model": name,
                "retrain": retrain,
                "reason": reason,
                "champion_version": champion.version if champion else None,
                "champion_data_hash": champion.data_hash if champion else None,
            }
        )
    retrain = [d["config"] for d in decisions if d["retrain"]]
    lines = "; ".join(f"{d['model']}: {d['reason']}" for d in decisions)
    if retrain:
        message = f"retraining {len(retrain)} of {len(decisions)} models on {ingested.data_hash} ({lines})"
    else:
        message = f"nothing to retrain on {ingested.data_hash} ({lines})"
    log.info(message)
    result = FreshnessResult(ingested.dataset, ingested.data_hash, retrain, decisions, message)
    result.run_id = _log_freshness(result)
    return result


def decide(data_hash: str, champion: VersionInfo | None, newest: VersionInfo | None, force: bool) -> tuple[bool, str]:
    """Whether a model whose champion and newest version are these is retrained on `data_hash`, and why."""
    if force:
        return True, "retraining on request (force)"
    if champion is not None and champion.data_hash == data_hash:
        return False, f"no new data since v{champion.version}"
    if newest is not None and newest.data_hash == data_hash:
        stays = f"champion v{champion.version} stays" if champion else "no champion"
        since = f"no new data since v{newest.version}"
        if newest.tags.get(GATE_TAG) != "passed":
            return False, f"{since}, which failed its gates on it ({stays}; force to retrain)"
        if newest.tags.get(PROMOTED_TAG) == "true":
            why = f": {newest.tags[ROLLED_BACK_TAG]}" if ROLLED_BACK_TAG in newest.tags else ""
            return False, f"{since}, champion once and rolled back{why} ({stays}; force to retrain)"
        return True, f"v{newest.version} passed its gates on this data but was never promoted ({stays}): retraining"
    if champion is not None:
        return True, f"new data: champion v{champion.version} was trained on {champion.data_hash}"
    if newest is not None:
        return True, f"new data: no champion, and v{newest.version} was trained on {newest.data_hash}"
    return True, "no version yet"


def _log_freshness(result: FreshnessResult) -> str:
    """A `freshness` run in the dataset's data experiment: the verdict and message as tags, the decisions as JSON."""
    client = MlflowClient()
    run = client.create_run(
        ensure_experiment(data_experiment_name(result.dataset)),
        run_name=f"freshness {result.dataset}",
        tags={
            "step": "freshness",
            "dataset": result.dataset,
            "data_hash": result.data_hash,
            OUTCOME_TAG: "retrain" if result.retrain else "no new data",
            "retrain_models": ",".join(d["model"] for d in result.decisions if d["retrain"]) or "none",
            "mlflow.note.content": result.message,
        },
    )
    run_id = run.info.run_id
    log_metrics(client, run_id, {"models_to_retrain": len(result.retrain), "models_checked": len(result.decisions)})
    client.log_dict(run_id, {"message": result.message, "decisions": result.decisions}, "freshness.json")
    client.set_terminated(run_id, "FINISHED")
    return run_id


def latest_freshness(dataset: str) -> str | None:
    """The message of the newest freshness check on `dataset`, or None when there has been none."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(data_experiment_name(dataset))
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], "tags.step = 'freshness'", order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0].data.tags.get("mlflow.note.content") if runs else None
