"""Each process that computes beside others gets its share of the cores as OMP_NUM_THREADS (landmarkflow.threads)."""

from __future__ import annotations

import os

import pytest

from landmarkflow import threads as threads_module
from landmarkflow.threads import share_cores


@pytest.mark.parametrize(
    ("cores", "processes", "threads"), [(8, 2, "4"), (2, 2, "1"), (1, 2, "1"), (2, 1, "2"), (8, 3, "2")]
)
def test_each_process_gets_its_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, processes: int, threads: str
) -> None:
    """As `make pipeline-run` splits the cores between its model branches, and `serve --workers N` between workers."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "usable_cpus", lambda: cores)
    share_cores(processes)
    assert os.environ["OMP_NUM_THREADS"] == threads


def test_a_thread_count_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(threads_module, "usable_cpus", lambda: 16)
    share_cores(2)
    assert os.environ["OMP_NUM_THREADS"] == "3"
