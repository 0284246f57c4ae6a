"""Promotion on the local store (what `make pipeline-run` uses): a candidate that passed its gate against an older
champion is compared again with the champion of the moment, under the alias lock, and stays out if it is worse;
promote and register run again change nothing. tests/test_registry_faults.py runs the same against a server, with
the two promotions at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from landmarkflow import alias_lock as alias_lock_module
from landmarkflow import steps
from landmarkflow.alias_lock import lock_name
from landmarkflow.registry import CHALLENGER, CHAMPION, champion_or_newest, get_version, version_by_alias
from landmarkflow.steps import promoting, registering
from tests.fakes import candidate


def test_a_candidate_worse_than_the_champion_promoted_after_its_gate_stays_out(tmp_path: Path) -> None:
    first = candidate(tmp_path, "hih", 0.060, None)
    assert steps.promote(first.register(), first.gated).promoted
    worse, better = candidate(tmp_path, "hih", 0.050, "1"), candidate(tmp_path, "hih", 0.040, "1")
    registered_worse, registered_better = worse.register(), better.register()
    assert version_by_alias("hih-synthetic", CHALLENGER).version == registered_better.version == "3"

    assert steps.promote(registered_better, better.gated).promoted
    late = steps.promote(registered_worse, worse.gated)
    assert not late.promoted and late.champion_version == "3"
    assert late.message == (
        "hih-synthetic@champion stays at v3: v2 passed its gates against v1, but v3 became champion since and v2 is "
        "worse: test NME 5.000% vs champion v3 4.000% (+0.050% tolerance): worse"
    )
    assert version_by_alias("hih-synthetic", CHAMPION).version == "3"

    again = steps.promote(registered_better, better.gated)
    assert again.promoted and again.champion_version == "3"
    # a retry registers nothing new and moves no alias back: v2 is no longer challenger
    assert worse.register() == replace(registered_worse, challenger=False)
    assert version_by_alias("hih-synthetic", CHALLENGER).version == "3"
    assert sorted(int(v.version) for v in MlflowClient().search_model_versions("name='hih-synthetic'")) == [1, 2, 3]
    assert MlflowClient().search_model_versions(f"name='{lock_name('hih-synthetic')}'") == []


def test_the_version_shown_of_a_model_is_its_champion_else_its_newest(tmp_path: Path) -> None:
    assert champion_or_newest("hih-synthetic") is None
    first = candidate(tmp_path, "hih", 0.060, None)
    registered = first.register()
    version, role = champion_or_newest("hih-synthetic")
    assert (version.version, role) == (registered.version, "newest")
    assert steps.promote(registered, first.gated).promoted
    candidate(tmp_path, "hih", 0.070, "1").register()  # newer, not promoted
    version, role = champion_or_newest("hih-synthetic")
    assert (version.version, role) == ("1", CHAMPION)


def test_a_version_carries_the_commit_its_model_was_trained_at(tmp_path: Path) -> None:
    """Not the commit of the moment it is registered: a CLI user may commit or edit between train and register."""
    trained = candidate(tmp_path, "hih", 0.05, None)
    MlflowClient().set_tag(trained.trained.run_id, "git_commit", "0123abc")
    registered = trained.register()
    assert get_version("hih-synthetic", registered.version).tags["git_commit"] == "0123abc"


def test_a_failed_candidate_names_the_champion_of_the_moment(tmp_path: Path) -> None:
    """Its gate saw no champion, but another run has promoted one since: that one stays."""
    failed = candidate(tmp_path, "hih", 0.09, None)
    failed.gated = replace(failed.gated, passed=False, reasons="test NME 9.000% >= 8.000%")
    first = candidate(tmp_path, "hih", 0.05, None)
    assert steps.promote(first.register(), first.gated).promoted
    outcome = steps.promote(failed.register(), failed.gated)
    assert not outcome.promoted and outcome.champion_version == "1"
    assert outcome.message == "hih-synthetic@champion stays at v1: v2 failed its gates (test NME 9.000% >= 8.000%)"


def test_a_challenger_gated_again_and_failed_loses_challenger_and_nothing_else(tmp_path: Path) -> None:
    """Gate, register and promote run again for a run whose first gate passed (a CLI user with a changed config, or
    after a champion was fixed): when the new gate fails, the version keeps no alias that says it passed."""
    first = candidate(tmp_path, "hih", 0.05, None)
    assert steps.promote(first.register(), first.gated).promoted
    second = candidate(tmp_path, "hih", 0.04, "1")
    assert second.register().challenger and version_by_alias("hih-synthetic", CHALLENGER).version == "2"

    second.gated = replace(second.gated, passed=False, reasons="test NME 4.000% >= threshold 3.000%")
    registered = second.register()
    assert registered.version == "2" and not registered.challenger
    assert version_by_alias("hih-synthetic", CHALLENGER) is None
    assert get_version("hih-synthetic", "2").tags["gate"] == "failed"
    assert version_by_alias("hih-synthetic", CHAMPION).version == "1"
    assert not steps.promote(registered, second.gated).promoted
    assert MlflowClient().search_model_versions(f"name='{lock_name('hih-synthetic')}'") == []


def test_a_failed_gate_leaves_the_challenger_of_another_version(tmp_path: Path) -> None:
    passed, failed = candidate(tmp_path, "hih", 0.05, None), candidate(tmp_path, "hih", 0.09, None)
    failed.gated = replace(failed.gated, passed=False, reasons="test NME 9.000% >= threshold 8.000%")
    assert passed.register().challenger and not failed.register().challenger
    assert version_by_alias("hih-synthetic", CHALLENGER).version == "1"


def test_results_of_an_earlier_training_in_the_workdir_are_refused(tmp_path: Path) -> None:
    """`train` again in a workdir leaves the earlier training's evaluate, export, gate and register results there: a
    step given them must not gate, register or promote this run with another model's NME or ONNX."""
    earlier, retrained = candidate(tmp_path, "hih", 0.05, None), candidate(tmp_path, "hih", 0.30, None)
    registered = earlier.register()
    with pytest.raises(
        ValueError, match=f"evaluate of run {earlier.trained.run_id}.*not of run {retrained.trained.run_id}"
    ):
        steps.gate(retrained.trained, earlier.evaluated, retrained.exported)
    with pytest.raises(ValueError, match="run evaluate and export again"):
        steps.register(retrained.trained, earlier.evaluated, earlier.exported, retrained.gated)
    for gated in (retrained.gated, replace(retrained.gated, passed=False)):  # failed: "v1 failed its gates" was said
        with pytest.raises(ValueError, match=f"v1 was registered from run {earlier.trained.run_id}, but the gate"):
            steps.promote(registered, gated)
    assert version_by_alias("hih-synthetic", CHAMPION) is None
    assert [int(v.version) for v in MlflowClient().search_model_versions("name='hih-synthetic'")] == [1]


def test_a_promotion_that_waited_for_the_lock_reads_the_gate_its_version_has_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promotion of a run whose first gate passed waits for the alias lock while the run is gated again, fails and
    registered again (a CLI user's second gate): once it holds the lock, the version's gate tag says failed, and
    champion must not move to it on the first gate's word."""
    first = candidate(tmp_path, "hih", 0.05, None)
    assert steps.promote(first.register(), first.gated).promoted
    second = candidate(tmp_path, "hih", 0.04, "1")
    registered = second.register()
    passed = second.gated
    real_lock = promoting.alias_lock

    @contextmanager
    def regated_while_waiting(*args: object, **kwargs: object) -> Iterator[object]:
        second.gated = replace(passed, passed=False, reasons="test NME 4.000% >= threshold 3.000%")
        assert not second.register().challenger
        with real_lock(*args, **kwargs) as lock:
            yield lock

    monkeypatch.setattr(promoting, "alias_lock", regated_while_waiting)
    with pytest.raises(ValueError, match="hih-synthetic v2: its registry tag gate=failed, not passed"):
        steps.promote(registered, passed)
    assert version_by_alias("hih-synthetic", CHAMPION).version == "1"
    assert version_by_alias("hih-synthetic", CHALLENGER) is None


def test_a_regate_registered_while_a_promotion_holds_the_lock_waits_until_it_has_decided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order of the test above: the promotion holds the alias lock and has read the version's gate tag
    again (passed, the run's first gate) when the run's second gate fails and registers. Its gate tags wait for the
    lock, so `champion` moves on the gate the promotion read, never onto a version already tagged gate=failed; the
    tags and the loss of `challenger` follow once the promotion lets go."""
    first = candidate(tmp_path, "hih", 0.05, None)
    assert steps.promote(first.register(), first.gated).promoted
    second = candidate(tmp_path, "hih", 0.04, "1")
    registered = second.register()
    passed = second.gated
    failed = replace(passed, passed=False, reasons="test NME 4.000% >= threshold 3.000%")
    tickets = f"name='{lock_name('hih-synthetic')}'"
    regating: list[Future[steps.RegisterResult]] = []
    gate_at_move: list[str] = []
    real_why_not, real_set_alias = promoting._why_not, alias_lock_module.set_alias

    def regated_while_deciding(*args: object) -> str | None:  # under the lock, the gate tag read again
        pool = ThreadPoolExecutor(1)
        regating.append(pool.submit(steps.register, second.trained, second.evaluated, second.exported, failed))
        pool.shutdown(wait=False)
        deadline = time.monotonic() + 60
        while not regating[0].done() and len(MlflowClient().search_model_versions(tickets)) < 2:
            assert time.monotonic() < deadline, "the second register neither ended nor queued for the lock"
            time.sleep(0.1)
        return real_why_not(*args)

    def set_alias(name: str, alias: str, version: str) -> None:
        if alias == CHAMPION:
            gate_at_move.append(get_version(name, version).tags["gate"])
        real_set_alias(name, alias, version)

    monkeypatch.setattr(promoting, "_why_not", regated_while_deciding)
    monkeypatch.setattr(alias_lock_module, "set_alias", set_alias)
    assert steps.promote(registered, passed).promoted
    assert gate_at_move == ["passed"]
    assert not regating[0].result(timeout=60).challenger
    assert get_version("hih-synthetic", "2").tags["gate"] == "failed"
    assert version_by_alias("hih-synthetic", CHALLENGER) is None
    assert MlflowClient().search_model_versions(tickets) == []


def test_two_gates_of_one_run_registered_at_once_leave_one_gates_tags_and_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's version passed its gate; then two registers of the run run at once: a second gate (failed, on a new
    evaluation) and a retry of the first. The retry found nothing to retag, but the second gate's tags land before it
    takes the alias lock: under the lock it must tag the version back to its own gate, so that the version ends as
    one gate left it (passed, its NME, challenger), not with a failed gate's tags while holding challenger."""
    run = candidate(tmp_path, "hih", 0.04, None)
    assert run.register().challenger
    first_gate = run.gated
    second_gate = replace(first_gate, passed=False, reasons="test NME 6.000% >= threshold 3.000%")
    reevaluated = replace(run.evaluated, metrics={"nme": 0.06})
    real_lock = registering.alias_lock

    @contextmanager
    def second_gate_lands_first(*args: object, **kwargs: object) -> Iterator[object]:
        monkeypatch.setattr(registering, "alias_lock", real_lock)
        assert not steps.register(run.trained, reevaluated, run.exported, second_gate).challenger
        with real_lock(*args, **kwargs) as lock:
            yield lock

    monkeypatch.setattr(registering, "alias_lock", second_gate_lands_first)
    assert run.register().challenger
    tags = get_version("hih-synthetic", "1").tags
    assert (tags["gate"], tags["gate_reasons"], tags["test_nme"]) == ("passed", "all gates passed", "0.040000")
    assert version_by_alias("hih-synthetic", CHALLENGER).version == "1"
