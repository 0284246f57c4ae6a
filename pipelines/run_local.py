"""`make pipeline-run`: the same pipeline through kfp.local's SubprocessRunner, then where to look.

Runs every component as a subprocess of this interpreter (no Docker, no cluster), with MLflow on the
local sqlite store and DVC on the local remote.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", help="Experiment config (repeatable); default: all small ones")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-root", default="data/raw/synthetic")
    parser.add_argument("--epochs", type=int, default=-1, help="Override train.epochs (negative: the config's)")
    parser.add_argument("--pipeline-root", default="local_outputs")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from kfp import local

    from landmarkflow.report import print_pipeline_report
    from landmarkflow.tracking import disable_telemetry, setup_tracking
    from pipelines.landmarks import DEFAULT_CONFIGS, make_pipeline

    disable_telemetry()
    setup_tracking()
    configs = [str((REPO / c).resolve()) for c in (args.config or DEFAULT_CONFIGS)]
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str((REPO / args.pipeline_root).resolve()),
        raise_on_error=True,
    )
    started = time.perf_counter()
    error = None
    try:
        make_pipeline(parallelism=1)(
            dataset=args.dataset,
            data_root=str((REPO / args.data_root).resolve()),
            repo_root=str(REPO),
            configs=configs,
            epochs=args.epochs,
        )
    except RuntimeError as exc:
        error = str(exc)
    minutes = (time.perf_counter() - started) / 60
    return print_pipeline_report(configs, args.dataset, REPO / args.pipeline_root, minutes, error)


if __name__ == "__main__":
    sys.exit(main())
