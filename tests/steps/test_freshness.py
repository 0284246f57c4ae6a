"""The freshness check: a model is retrained on data that neither its champion nor its newest version was trained on,
and the verdict is logged where a user looks (an MLflow run in the data experiment)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from landmarkflow import steps
from landmarkflow.cli import app
from landmarkflow.rollback import roll_back
from landmarkflow.steps.checking_freshness import OUTCOME_TAG, latest_freshness
from tests.fakes import candidate

HIH = "configs/hih_synthetic_tiny.yaml"
LGCN = "configs/lgcn_synthetic_tiny.yaml"


def _ingested(data_hash: str) -> steps.IngestResult:
    return steps.IngestResult("synthetic", "68", ".", "manifest.parquet", data_hash, {"train": 1})


def test_each_model_is_retrained_only_on_data_it_has_not_seen(tmp_path: Path) -> None:
    first = candidate(tmp_path, "hih", 0.05, None, data_hash="data-1")
    assert steps.promote(first.register(), first.gated).promoted

    same = steps.check_freshness(_ingested("data-1"), [HIH, LGCN])
    assert same.retrain == [LGCN]  # lgcn has no version at all
    assert [d["reason"] for d in same.decisions] == ["no new data since v1", "no version yet"]
    assert same.decisions[0]["champion_data_hash"] == "data-1"

    unchanged = steps.check_freshness(_ingested("data-1"), [HIH])
    assert unchanged.retrain == []
    assert unchanged.message == "nothing to retrain on data-1 (hih-synthetic: no new data since v1)"
    run = MlflowClient().get_run(unchanged.run_id)
    assert run.data.tags[OUTCOME_TAG] == "no new data" and run.data.tags["retrain_models"] == "none"
    assert latest_freshness("synthetic") == unchanged.message

    changed = steps.check_freshness(_ingested("data-2"), [HIH])
    assert changed.retrain == [HIH]
    assert changed.decisions[0]["reason"] == "new data: champion v1 was trained on data-1"
    assert MlflowClient().get_run(changed.run_id).data.tags[OUTCOME_TAG] == "retrain"


def test_a_model_that_failed_its_gates_on_this_data_waits_for_new_data_unless_forced(tmp_path: Path) -> None:
    first = candidate(tmp_path, "hih", 0.05, None, data_hash="data-1")
    assert steps.promote(first.register(), first.gated).promoted
    failed = candidate(tmp_path, "hih", 0.09, "1", data_hash="data-2")
    failed.gated = replace(failed.gated, passed=False, reasons="test NME 9.000% >= 8.000%")
    assert not steps.promote(failed.register(), failed.gated).promoted

    again = steps.check_freshness(_ingested("data-2"), [HIH])
    assert again.retrain == []
    assert again.decisions[0]["reason"] == (
        "no new data since v2, which failed its gates on it (champion v1 stays; force to retrain)"
    )
    forced = steps.check_freshness(_ingested("data-2"), [HIH], force=True)
    assert forced.retrain == [HIH] and forced.decisions[0]["reason"] == "retraining on request (force)"
    assert steps.check_freshness(_ingested("data-3"), [HIH]).retrain == [HIH]


def test_a_model_that_passed_its_gates_but_was_never_promoted_is_retrained(tmp_path: Path) -> None:
    """A promotion cut short (a lost lease, a crash) must not leave the model waiting for new data for ever."""
    first = candidate(tmp_path, "hih", 0.05, None, data_hash="data-1")
    assert steps.promote(first.register(), first.gated).promoted
    passed = candidate(tmp_path, "hih", 0.04, "1", data_hash="data-2")
    passed.register()  # and no promote

    again = steps.check_freshness(_ingested("data-2"), [HIH])
    assert again.retrain == [HIH]
    assert again.decisions[0]["reason"] == (
        "v2 passed its gates on this data but was never promoted (champion v1 stays): retraining"
    )
    assert steps.promote(steps.RegisterResult("hih-synthetic", "2", True), passed.gated).promoted
    roll_back("hih-synthetic", "jaws too narrow on webcams")
    rolled_back = steps.check_freshness(_ingested("data-2"), [HIH])
    assert rolled_back.retrain == [] and rolled_back.decisions[0]["reason"] == (
        "no new data since v2, champion once and rolled back: jaws too narrow on webcams (champion v1 stays; force "
        "to retrain)"
    )


def test_the_cli_writes_the_decision_beside_the_ingest_result(tmp_path: Path) -> None:
    _ingested("data-1").save(tmp_path / "ingest.json")
    result = CliRunner().invoke(app, ["data", "freshness", "--config", HIH, "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "retraining 1 of 1 models on data-1 (hih-synthetic: no version yet)" in result.output
    assert steps.FreshnessResult.load(tmp_path / "freshness.json").retrain == [HIH]
