"""`make pipeline-run-isolated`: the pipeline as a Kubeflow cluster runs it, proven on this machine.

The same pipeline as `make pipeline-run`, through kfp.local, but sharing nothing a cluster's pods would not share:
every step starts in its own fresh, empty working folder with only its input artifacts and the environment a
cluster's Secret gives it (the tracking server and S3: `Services.step_environment`, nothing of this shell's). The
data travels from ingest to the other steps through a DVC remote on S3, by its hash; runs, models and the registry
live on a real `mlflow server` whose artifacts are in that S3 (SeaweedFS). Nothing is written into the checkout's
mlflow/ or data/. The servers keep running afterwards, so the registry can be used (`landmarkflow predict`
against the server); `make isolated-stop` ends them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from landmarkflow.threads import THREADS_ENV

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TERM", THREADS_ENV, "TMPDIR")
"""What a step keeps of this shell's environment: how to find programs and print, nothing that points at a store."""


def parse_args() -> argparse.Namespace:
    from landmarkflow.data.synthetic_default import SynthOptions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config",
        action="append",
        help="Experiment config, a path in the checkout as a pod finds it in the image (repeatable); default: all "
        "small ones",
    )
    parser.add_argument("--epochs", type=int, default=-1, help="Override train.epochs (negative: the config's)")
    parser.add_argument("--parallel", type=int, default=2, choices=(1, 2), help="Model branches at once")
    synth = SynthOptions()
    parser.add_argument("--synth-train", type=int, default=synth.num_train, help="Synthetic train faces ingest renders")
    parser.add_argument("--synth-test", type=int, default=synth.num_test, help="Synthetic test faces ingest renders")
    parser.add_argument(
        "--force",
        action="store_true",
        help="Retrain every model, even those whose champion (or newest version) was trained on this very data",
    )
    parser.add_argument("--state", type=Path, default=REPO / ".isolated", help="The services' data, outputs")
    parser.add_argument("--stop", action="store_true", help="Stop the services of --state and exit")
    return parser.parse_args()


def step_environment(step_env: dict[str, str], home: Path) -> dict[str, str]:
    """The whole environment of every step: the Secret's variables, what the image sets (telemetry off, the
    commit), and a home of its own (no ~/.aws, ~/.config/dvc or MLflow settings of the user's reach a step)."""
    from landmarkflow.registry import GIT_COMMIT_ENV, git_commit
    from landmarkflow.tracking import TELEMETRY_OFF

    kept = {key: os.environ[key] for key in KEPT_ENV if key in os.environ}
    image = {GIT_COMMIT_ENV: git_commit(REPO)}  # what the image bakes in
    return {**kept, **TELEMETRY_OFF, **image, **step_env, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def main() -> int:
    args = parse_args()
    args.state = args.state.resolve()  # before the run moves into the checkout
    from pipelines.local_services import start_services, stop_services

    if args.stop:
        stopped = stop_services(args.state)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'} (data kept in {args.state})")
        return 0
    from kfp import local

    from landmarkflow.pipeline_summary import print_pipeline_report
    from landmarkflow.threads import share_cores
    from landmarkflow.tracking import setup_tracking
    from pipelines.landmarks import DEFAULT_CONFIGS, make_pipeline

    # Configs go by their paths in the checkout, as a cluster's steps find them inside the image's working directory
    # (components/Dockerfile's WORKDIR): the steps start here, as a pod starts there.
    configs = list(args.config or DEFAULT_CONFIGS)
    os.chdir(REPO)
    share_cores(min(args.parallel, len(configs)))
    services = start_services(args.state)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=args.state))
    environment = step_environment(services.step_environment(), home)
    os.environ.clear()
    os.environ.update(environment)
    setup_tracking()
    outputs = args.state / "outputs"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(outputs.resolve()), raise_on_error=True)
    started = time.perf_counter()
    error = None
    try:
        make_pipeline(parallelism=args.parallel)(
            dataset="synthetic",
            data_root="data/raw/synthetic",
            configs=configs,
            epochs=args.epochs,
            synth_train=args.synth_train,
            synth_test=args.synth_test,
            dvc_remote_url=services.dvc_remote,
            force_retrain=args.force,
        )
    except RuntimeError as exc:
        error = str(exc)
    minutes = (time.perf_counter() - started) / 60
    code = print_pipeline_report(configs, "synthetic", outputs, minutes, error)
    print(f"Services keep running for the registry above (make isolated-stop ends them; data in {args.state}).")
    return code


if __name__ == "__main__":
    sys.exit(main())
