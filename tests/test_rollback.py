"""Rolling `champion` back by hand on the local store: to the champion before, or to a named version; the version
left is tagged with the reason and promote never puts it back; the same rollback run again rolls back nothing more;
refusals leave every alias where it was."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from landmarkflow import rollback, steps
from landmarkflow.alias_lock import lock_name
from landmarkflow.cli import app
from landmarkflow.registry import CHAMPION, PROMOTED_TAG, ROLLED_BACK_TAG, get_version, version_by_alias
from landmarkflow.rollback import roll_back
from tests.fakes import Candidate, candidate

NAME = "hih-synthetic"


def _champion() -> str:
    champion = version_by_alias(NAME, CHAMPION)
    assert champion is not None
    return champion.version


def _promoted_in_turn(tmp_path: Path, count: int) -> list[Candidate]:
    """`count` versions, each better than the last and promoted over it."""
    made = []
    for index in range(count):
        made.append(candidate(tmp_path, "hih", 0.06 - 0.01 * index, str(index) if index else None))
        assert steps.promote(made[-1].register(), made[-1].gated).promoted
    return made


def test_champion_returns_to_the_one_before_and_promote_never_puts_the_left_one_back(tmp_path: Path) -> None:
    made = _promoted_in_turn(tmp_path, 3)
    done = roll_back(NAME, "eyes drift on webcam faces")
    assert (done.from_version, done.to_version, _champion()) == ("3", "2", "2")
    assert done.message == "hih-synthetic@champion v3 -> v2 (rolled back: eyes drift on webcam faces)"
    left = get_version(NAME, "3").tags
    assert left[ROLLED_BACK_TAG] == "eyes drift on webcam faces" and left[PROMOTED_TAG] == "true"

    # v3's promote step run again (a retry): its gate was against v2, the champion now, yet it stays out
    retried = steps.promote(steps.RegisterResult(NAME, "3", True), made[2].gated)
    assert not retried.promoted and _champion() == "2"
    assert retried.message == (
        "hih-synthetic@champion stays at v2: v3 was rolled back by hand (eyes drift on webcam faces); "
        "`landmarkflow rollback hih-synthetic --to 3` makes it champion again"
    )

    assert roll_back(NAME, "v2 too").to_version == "1"  # the one before v2; v3 is not a way back
    again = roll_back(NAME, "v3 was right after all", to_version="3")
    assert (again.from_version, _champion()) == ("1", "3")
    assert ROLLED_BACK_TAG not in get_version(NAME, "3").tags
    assert get_version(NAME, "1").tags[ROLLED_BACK_TAG] == "v3 was right after all"
    assert MlflowClient().search_model_versions(f"name='{lock_name(NAME)}'") == []  # every ticket released


def test_a_version_that_passed_its_gates_but_was_never_promoted_can_be_named(tmp_path: Path) -> None:
    _promoted_in_turn(tmp_path, 2)
    candidate(tmp_path, "hih", 0.055, "2").register()  # v3: passed, worse than v2, never promoted
    assert roll_back(NAME, "v2 misreads profiles", to_version="3").to_version == "3"
    assert get_version(NAME, "3").tags[PROMOTED_TAG] == "true"  # champion once now, as freshness reads it


def test_refusals_name_the_reason_and_move_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hih-synthetic: no champion to roll back"):
        roll_back(NAME, "why")
    first = _promoted_in_turn(tmp_path, 1)[0]
    failed = candidate(tmp_path, "hih", 0.09, "1")
    failed.gated = replace(failed.gated, passed=False, reasons="test NME 9.000% >= 8.000%")
    failed.register()  # v2, gate=failed

    with pytest.raises(ValueError, match="no version before champion v1 was champion"):
        roll_back(NAME, "why")
    refused = "hih-synthetic v2: its registry tag gate=failed, not passed; only a version that passed its gates"
    with pytest.raises(ValueError, match=f"{refused} can be champion"):
        roll_back(NAME, "why", to_version="2")
    with pytest.raises(ValueError, match="v1 is champion already"):
        roll_back(NAME, "why", to_version="1")
    with pytest.raises(ValueError, match="a rollback needs a reason"):
        roll_back(NAME, "  ")
    with pytest.raises(ValueError, match="hih-synthetic: there is no v9 \\(never registered, or deleted\\)"):
        roll_back(NAME, "why", to_version="v9")
    with pytest.raises(ValueError, match="'latest' is not a version number"):
        roll_back(NAME, "why", to_version="latest")
    assert _champion() == "1" and ROLLED_BACK_TAG not in get_version(NAME, "1").tags
    assert steps.promote(first.register(), first.gated).promoted  # the champion's own retry is still a no-op
    assert MlflowClient().search_model_versions(f"name='{lock_name(NAME)}'") == []


def test_the_same_rollback_run_again_rolls_back_nothing_more(tmp_path: Path) -> None:
    """Its rollout failed or its answer was lost: run again with `from_version`, it finds its own tag and stops."""
    _promoted_in_turn(tmp_path, 3)
    first = roll_back(NAME, "eyes drift", from_version="v3")
    again = roll_back(NAME, "eyes drift", from_version="3")
    assert (first.to_version, again.to_version, _champion()) == ("2", "2", "2")
    assert again.message == "hih-synthetic@champion is v2 already (v3 rolled back: eyes drift)"
    assert ROLLED_BACK_TAG not in get_version(NAME, "2").tags
    with pytest.raises(ValueError, match="champion is v2, not v3: nothing rolled back"):
        roll_back(NAME, "another reason", from_version="3")
    assert _champion() == "2"


def test_a_rollback_cut_short_before_the_alias_moved_leaves_a_champion_promote_and_rollback_finish(
    tmp_path: Path,
) -> None:
    """The version left is tagged first and the alias moved last: a crash between leaves the champion tagged, which a
    retried promote of it keeps as champion and the rollback run again completes."""
    made = _promoted_in_turn(tmp_path, 2)
    MlflowClient().set_model_version_tag(NAME, "2", ROLLED_BACK_TAG, "eyes drift")  # then the process died
    assert steps.promote(steps.RegisterResult(NAME, "2", True), made[1].gated).promoted
    assert roll_back(NAME, "eyes drift", from_version="2").to_version == "1"
    assert _champion() == "1"


def test_a_promotion_while_the_rollback_waited_stops_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _promoted_in_turn(tmp_path, 2)
    later = candidate(tmp_path, "hih", 0.03, "2")
    real_lock = rollback.alias_lock

    @contextmanager
    def promoted_while_waiting(*args: object, **kwargs: object) -> Iterator[object]:
        assert steps.promote(later.register(), later.gated).promoted  # v3 takes the lock first
        with real_lock(*args, **kwargs) as lock:
            yield lock

    monkeypatch.setattr(rollback, "alias_lock", promoted_while_waiting)
    with pytest.raises(ValueError, match="champion moved from v2 to v3 while this rollback waited; nothing rolled"):
        roll_back(NAME, "eyes drift")
    assert _champion() == "3" and ROLLED_BACK_TAG not in get_version(NAME, "2").tags


def test_the_cli_rolls_back_and_fails_cleanly(tmp_path: Path) -> None:
    _promoted_in_turn(tmp_path, 2)
    runner = CliRunner()
    refused = runner.invoke(app, ["rollback", "nobody-synthetic", "--reason", "why"])
    assert refused.exit_code == 1 and "error: nobody-synthetic: no champion to roll back" in refused.output
    result = runner.invoke(app, ["rollback", NAME, "--reason", "lips open on closed mouths"])
    assert result.exit_code == 0, result.output
    assert "hih-synthetic@champion v2 -> v1 (rolled back: lips open on closed mouths)" in result.output
    assert _champion() == "1"
    named = runner.invoke(app, ["rollback", NAME, "--from", "v1", "--to", "v2", "--reason", "v2 was right"])
    assert named.exit_code == 0, named.output
    assert "hih-synthetic@champion v1 -> v2 (rolled back: v2 was right)" in named.output
    missing = runner.invoke(app, ["rollback", NAME, "--to", "7", "--reason", "why"])
    assert missing.exit_code == 1 and "error: hih-synthetic: there is no v7" in missing.output


def test_the_versions_command_shows_the_trail_a_rollback_leaves(tmp_path: Path) -> None:
    _promoted_in_turn(tmp_path, 2)
    failed = candidate(tmp_path, "hih", 0.09, "2")
    failed.gated = replace(failed.gated, passed=False, reasons="test NME 9.000% >= 8.000%")
    failed.register()
    roll_back(NAME, "eyes drift on webcams")

    runner = CliRunner()  # after the steps above: the CLI points logging at its own output, closed when it returns
    shown = runner.invoke(app, ["models", "versions", NAME, "--json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [(r["version"], r["aliases"], r["gate"], r["promoted"], r["rolled_back"]) for r in rows] == [
        ("1", ["champion"], "passed", True, None),
        ("2", ["challenger"], "passed", True, "eyes drift on webcams"),
        ("3", [], "failed", False, None),
    ]
    assert [r["test_nme"] for r in rows] == pytest.approx([0.06, 0.05, 0.09])
    assert {r["data_hash"] for r in rows} == {"data-1"} and all(r["run_id"] for r in rows)
    table = runner.invoke(app, ["models", "versions", NAME])
    assert table.exit_code == 0, table.output
    assert re.search(r"v1 │ champion +│ passed │ +6\.00% │", table.stdout), table.stdout
    assert re.search(r"v2 │ challenger │ passed │ +5\.00% │ .* │ yes +│ eyes drift on webcams", table.stdout)
    unknown = runner.invoke(app, ["models", "versions", "nobody-synthetic"])
    assert unknown.exit_code == 1 and "error: nobody-synthetic: no registered version" in unknown.output
