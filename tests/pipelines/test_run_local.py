"""`make pipeline-run` splits the machine's cores between the model branches it runs at once."""

from __future__ import annotations

import os

import pytest

from pipelines.run_local import share_cores


@pytest.mark.parametrize(("cores", "branches", "threads"), [(8, 2, "4"), (2, 2, "1"), (1, 2, "1"), (2, 1, "2")])
def test_each_branch_gets_its_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, branches: int, threads: str
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    share_cores(branches)
    assert os.environ["OMP_NUM_THREADS"] == threads


def test_a_thread_count_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    share_cores(2)
    assert os.environ["OMP_NUM_THREADS"] == "3"
