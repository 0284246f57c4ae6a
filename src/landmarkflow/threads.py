"""How many threads each process computes on: OMP_NUM_THREADS, which PyTorch reads itself and onnxruntime through
`runtime.open_session`, shared out between the processes that run at once. No heavy imports: the CLI and the KServe
manifest read it too."""

from __future__ import annotations

import os
import sys

THREADS_ENV = "OMP_NUM_THREADS"
"""The threads of each process's computation: PyTorch's, and onnxruntime's in every session the project opens."""
STEP_THREADS_ENV = "LANDMARKFLOW_STEP_THREADS"
"""The threads of a pipeline step where nothing set THREADS_ENV: the CPUs its pod requests (pipelines/landmarks.py).
A pod sees every core of its node, and PyTorch and onnxruntime would start a thread on each: on a busy node, far more
threads than the CPUs the pod is given."""


def usable_cpus() -> int:
    """The CPUs this process may run on. Only Linux can say which those are (`os.sched_getaffinity`); elsewhere
    (macOS, Windows) every CPU counts."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def env_threads() -> int | None:
    """THREADS_ENV as a count above zero; None where it is unset or no such count, and each library sizes its own."""
    return _count_in(THREADS_ENV)


def _count_in(variable: str) -> int | None:
    """The environment variable as a count above zero; None where it is unset or holds no such count."""
    try:
        count = int(os.environ.get(variable, ""))
    except ValueError:
        return None
    return count if count > 0 else None


def share_cores(processes: int) -> None:
    """Give each of `processes` processes that compute at once its share of the CPUs as threads, unless the user set
    THREADS_ENV; processes started after this inherit it.

    Small models scale poorly across threads: on 2 cores one training with 2 threads ran at 117 images/s, two
    trainings with 1 thread each at ~110 images/s apiece. Two threads each would oversubscribe the cores and run far
    slower."""
    os.environ.setdefault(THREADS_ENV, str(_share(usable_cpus(), processes)))


def env_sharing_threads(processes: int) -> dict[str, str]:
    """This process's environment for `processes` processes it starts to compute at once (torchrun's ranks), its
    threads (THREADS_ENV, where set) shared out between them; where it is unset, torchrun gives each rank one."""
    env = dict(os.environ)
    threads = env_threads()
    if threads is not None:
        env[THREADS_ENV] = str(_share(threads, processes))
    return env


def _share(threads: int, processes: int) -> int:
    """Each of `processes` processes' share of `threads`, at least one."""
    return max(1, threads // max(1, processes))


def size_step_threads() -> int | None:
    """Set THREADS_ENV to STEP_THREADS_ENV's count (at most the usable CPUs), and PyTorch's threads with it where it
    is loaded already, unless THREADS_ENV is set: `make pipeline-run` shares the cores out that way, and a user's
    setting stands. Returns the count set, None where nothing changed."""
    wanted = _count_in(STEP_THREADS_ENV)
    if wanted is None or THREADS_ENV in os.environ:  # whatever it says: OpenMP reads lists ("4,2") too
        return None
    threads = min(wanted, usable_cpus())
    os.environ[THREADS_ENV] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return threads
