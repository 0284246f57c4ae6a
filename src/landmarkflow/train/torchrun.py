"""Running the torchrun launcher: its output streams through as it comes, and when the job fails, the error says
which rank failed and how (killed by a signal, or the exit code and the exception it raised), read from the failure
report torchrun prints when it stops the job."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence

TAIL_LINES = 500
"""The launcher's last stderr lines kept for the report (two ranks' tracebacks take about a hundred)."""
_FAILURE = re.compile(
    r"rank\s*: (?P<rank>\d+) \(local_rank: (?P<local_rank>\d+)\)\n"
    r"\s*exitcode\s*: (?P<exitcode>-?\d+) \(pid: (?P<pid>\d+)\)[^\n]*\n"
    r"\s*error_file\s*:[^\n]*\n"
    r"\s*traceback\s*: (?P<message>.*?)(?=\n\[\d+\]:|\n\s*-{8,}|\n\s*={8,}|\Z)",
    re.S,
)
"""One failure of torchrun's ChildFailedError report (torch.distributed.elastic.multiprocessing.errors)."""


class TrainingFailed(ChildProcessError):
    """The training processes failed; the message names the ranks and what happened to them."""


def run_launcher(command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """Run `command` (torchrun and its ranks) to the end, in `env` (default: this process's); TrainingFailed naming
    the failed ranks if it fails."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace", env=env)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for line in process.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        tail.append(line)
    code = process.wait()
    if code:
        raise TrainingFailed(describe_failure(code, "".join(tail)))


def describe_failure(code: int, report: str) -> str:
    """What torchrun's stderr `report` says failed; its last lines when it has no failure report (the launcher itself
    failed, e.g. in the rendezvous). Ranks killed by a signal (the OOM killer, a kill) come first, as the errors of the
    others, such as a closed connection, usually follow from them; ranks ended by SIGTERM, as torchrun stops the others
    when one fails, come last. Within each, torchrun's first observed failure first."""
    found = {int(m["rank"]): m for m in _FAILURE.finditer(report)}
    if not found:
        last = "".join(report.splitlines(keepends=True)[-20:])
        return f"distributed training failed: torchrun exited with code {code}; its last lines:\n{last}"
    root = list(found)[-1]  # the report lists the other failures, then the root cause
    order = [root] + [rank for rank in found if rank != root]
    order.sort(key=lambda rank: _precedence(int(found[rank]["exitcode"])))
    ranks = "; ".join(_one_failure(found[rank]) for rank in order)
    return f"distributed training failed: {ranks}; torchrun ended the job with exit code {code}"


def _precedence(exitcode: int) -> int:
    if exitcode == -signal.SIGTERM:
        return 2
    return 0 if exitcode < 0 else 1


def _one_failure(failure: re.Match[str]) -> str:
    where = f"rank {failure['rank']} (local rank {failure['local_rank']}, pid {failure['pid']})"
    exitcode = int(failure["exitcode"])
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"{where} was {'stopped' if exitcode == -signal.SIGTERM else 'killed'} by {name}"
    lines = [line.strip() for line in failure["message"].splitlines() if line.strip()]
    raised = lines[-1] if lines and not lines[-1].startswith("To enable traceback") else ""
    return f"{where} exited with code {exitcode}" + (f": {raised}" if raised else "")
