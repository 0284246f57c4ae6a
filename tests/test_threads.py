"""Each process that computes beside others gets its share of the cores as OMP_NUM_THREADS, and a pipeline step the
CPUs its pod asks for (landmarkflow.threads)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from landmarkflow import threads as threads_module
from landmarkflow.services import TRACKING_URI, start_step
from landmarkflow.threads import STEP_THREADS_ENV, THREADS_ENV, env_sharing_threads, share_cores, size_step_threads


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


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """Restore PyTorch's thread count, which a sized step sets for the whole process."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("torch_threads")
@pytest.mark.parametrize(("cores", "asked", "threads"), [(64, "2", 2), (1, "2", 1)])
def test_a_step_whose_threads_nothing_set_computes_on_its_pods_cpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cores: int, asked: str, threads: int
) -> None:
    """A pod sees every core of its node; the pipeline tells each step how many CPUs it asked for."""
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setenv(STEP_THREADS_ENV, asked)
    monkeypatch.setenv(TRACKING_URI, "http://127.0.0.1:1")
    monkeypatch.setattr(threads_module, "usable_cpus", lambda: cores)
    monkeypatch.chdir(tmp_path)  # start_step moves into its scratch folder; this puts the test's back afterwards
    start_step()
    assert (os.environ[THREADS_ENV], torch.get_num_threads()) == (str(threads), threads)


@pytest.mark.usefixtures("torch_threads")
@pytest.mark.parametrize(
    ("set_threads", "asked"), [("1", "2"), ("4,2", "2"), ("", "2"), (None, ""), (None, "two"), (None, "0")]
)
def test_threads_set_by_the_run_or_a_step_asking_for_none_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, set_threads: str | None, asked: str
) -> None:
    """`make pipeline-run` gives each of its two branches one thread on two cores, while the task asks for two; and
    whatever a user wrote in OMP_NUM_THREADS (OpenMP reads lists of counts too) is theirs."""
    if set_threads is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, set_threads)
    monkeypatch.setenv(STEP_THREADS_ENV, asked)
    torch.set_num_threads(3)
    assert size_step_threads() is None
    assert (os.environ.get(THREADS_ENV), torch.get_num_threads()) == (set_threads, 3)


@pytest.mark.parametrize(("threads", "ranks", "each"), [("2", 4, "1"), ("8", 4, "2"), ("2", 1, "2"), (None, 4, None)])
def test_the_ranks_a_step_starts_share_its_threads(
    monkeypatch: pytest.MonkeyPatch, threads: str | None, ranks: int, each: str | None
) -> None:
    """A step sized to its pod's 2 CPUs that trains 4 ranks under torchrun gives each one thread, not two; unset,
    torchrun's own default (one each) stands."""
    if threads is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, threads)
    monkeypatch.setenv("LANDMARKFLOW_PROBE", "kept")
    env = env_sharing_threads(ranks)
    assert (env.get(THREADS_ENV), env["LANDMARKFLOW_PROBE"]) == (each, "kept")
