"""How many threads each process computes on: OMP_NUM_THREADS, which PyTorch reads itself and onnxruntime through
`runtime.open_session`, shared out between the processes that run at once. No heavy imports: the CLI and the KServe
manifest read it too."""

from __future__ import annotations

import os

THREADS_ENV = "OMP_NUM_THREADS"
"""The threads of each process's computation: PyTorch's, and onnxruntime's in every session the project opens."""


def usable_cpus() -> int:
    """The CPUs this process may run on. Only Linux can say which those are (`os.sched_getaffinity`); elsewhere
    (macOS, Windows) every CPU counts."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def env_threads() -> int | None:
    """THREADS_ENV as a count above zero; None where it is unset or no such count, and each library sizes its own."""
    try:
        threads = int(os.environ.get(THREADS_ENV, ""))
    except ValueError:
        return None
    return threads if threads > 0 else None


def share_cores(processes: int) -> None:
    """Give each of `processes` processes that compute at once its share of the CPUs as threads, unless the user set
    THREADS_ENV; processes started after this inherit it.

    Small models scale poorly across threads: on 2 cores one training with 2 threads ran at 117 images/s, two
    trainings with 1 thread each at ~110 images/s apiece. Two threads each would oversubscribe the cores and run far
    slower."""
    os.environ.setdefault(THREADS_ENV, str(max(1, usable_cpus() // max(1, processes))))
