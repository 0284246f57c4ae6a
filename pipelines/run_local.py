"""`make pipeline-run`: the same pipeline through kfp.local's SubprocessRunner, then where to look.

Runs every component as a subprocess of this interpreter (no Docker, no cluster), with MLflow on the
local sqlite store (its URI in the components' environment, where a cluster's Secret puts the server's) and DVC
on the local remote.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument(
        "--real-faces",
        type=Path,
        help="Folder of real annotated faces in the models' layout: versioned into the data's DVC remote and "
        "measured by evaluate as real_nme",
    )
    parser.add_argument("--real-faces-dataset", default="300w", help="Format of --real-faces (300w, wflw, cofw, aflw)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="Retrain every model, even those whose champion (or newest version) was trained on this very data",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=2,
        choices=(1, 2),
        help="Model branches at once, sharing the cores (kfp.local runs at most 2: more would leave cores idle)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from kfp import local

    from landmarkflow.data.versioning import default_remote, remote_url, track_outside
    from landmarkflow.pipeline_summary import float32_notice, print_pipeline_report
    from landmarkflow.registry import GIT_COMMIT_ENV, git_commit
    from landmarkflow.services import TRACKING_URI
    from landmarkflow.threads import share_cores
    from landmarkflow.tracking import ARTIFACTS_ENV, artifact_root, disable_telemetry, setup_tracking
    from pipelines.landmarks import DEFAULT_CONFIGS, make_pipeline

    disable_telemetry()
    # Every step requires the tracking URI (on a cluster a Secret sets it) and works in a fresh folder of its own:
    # the local store, its artifact folder and the checkout's commit (an image bakes it in) go by the environment.
    os.environ[TRACKING_URI] = setup_tracking()
    os.environ[ARTIFACTS_ENV] = str(artifact_root())
    os.environ.setdefault(GIT_COMMIT_ENV, git_commit(REPO))
    configs = [str((REPO / c).resolve()) for c in (args.config or DEFAULT_CONFIGS)]
    # Evaluate fetches the real faces by version from the remote ingest pushes the data to (the repo's default).
    real_faces = track_outside(args.real_faces, remote_url(REPO, default_remote(REPO))) if args.real_faces else ""
    share_cores(min(args.parallel, len(configs)))
    notice = float32_notice(configs)
    if notice:
        print(notice, flush=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str((REPO / args.pipeline_root).resolve()),
        raise_on_error=True,
    )
    started = time.perf_counter()
    error = None
    try:
        make_pipeline(parallelism=args.parallel)(
            dataset=args.dataset,
            data_root=str((REPO / args.data_root).resolve()),
            repo_root=str(REPO),
            configs=configs,
            epochs=args.epochs,
            real_faces=real_faces,
            real_faces_dataset=args.real_faces_dataset,
            force_retrain=args.force,
        )
    except RuntimeError as exc:
        error = str(exc)
    minutes = (time.perf_counter() - started) / 60
    outputs = REPO / args.pipeline_root
    return print_pipeline_report(configs, args.dataset, outputs, minutes, error, real_faces=bool(args.real_faces))


if __name__ == "__main__":
    sys.exit(main())
