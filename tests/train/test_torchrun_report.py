"""The train step's error for a failed DDP job, from the failure report torchrun prints (made here by torch's own
error types, as its launcher makes it)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure, record

from landmarkflow.train.torchrun import describe_failure


def _report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Rank 1 killed by SIGKILL, rank 0 ended by the exception its @record entry point wrote to its error file, rank 2
    stopped by torchrun."""
    error_file = tmp_path / "error.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))

    @record
    def rank_zero() -> None:
        raise RuntimeError("[gloo] Connection closed by peer")

    with pytest.raises(RuntimeError):
        rank_zero()
    failures = {
        0: ProcessFailure(local_rank=0, pid=4241, exitcode=1, error_file=str(error_file)),
        1: ProcessFailure(local_rank=1, pid=4242, exitcode=-signal.SIGKILL, error_file="<N/A>"),
        2: ProcessFailure(local_rank=0, pid=4243, exitcode=-signal.SIGTERM, error_file="<N/A>"),
    }
    return f"W1202 some warning\n{ChildFailedError('landmarkflow.train', failures)}\n"


def test_the_error_names_each_failed_rank_and_what_ended_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = describe_failure(1, _report(tmp_path, monkeypatch))
    assert message.startswith("distributed training failed: rank 1 (local rank 1, pid 4242) was killed by SIGKILL; ")
    rank_zero = "rank 0 (local rank 0, pid 4241) exited with code 1: RuntimeError: [gloo] Connection closed by peer"
    assert f"; {rank_zero}; rank 2 (local rank 0, pid 4243) was stopped by SIGTERM;" in message
    assert message.endswith("torchrun ended the job with exit code 1")


def test_without_a_failure_report_the_error_quotes_the_launchers_last_lines() -> None:
    message = describe_failure(1, "starting\nRendezvousTimeoutError: no peers joined\n")
    assert "torchrun exited with code 1" in message and message.endswith("RendezvousTimeoutError: no peers joined\n")
