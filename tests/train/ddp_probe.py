"""A torchrun rank that is `python -m landmarkflow.train` with every checkpoint write, checkpoint upload and MLflow
metrics call also noted, by rank, in $PROBE_DIR/rank<RANK>.jsonl: a test then sees which ranks wrote and logged what."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from landmarkflow.train import trainer
from landmarkflow.train.__main__ import main


def _noted(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def noting(*args: Any, **kwargs: Any) -> Any:
        paths = [Path(arg).name for arg in args if isinstance(arg, Path)]
        note = {"call": name, "paths": paths, "step": kwargs.get("step")}
        with (Path(os.environ["PROBE_DIR"]) / f"rank{os.environ['RANK']}.jsonl").open("a") as out:
            out.write(json.dumps(note) + "\n")
        return call(*args, **kwargs)

    return noting


if __name__ == "__main__":
    for name in ("save_checkpoint", "upload_checkpoint", "log_metrics"):
        setattr(trainer, name, _noted(name, getattr(trainer, name)))
    main()
