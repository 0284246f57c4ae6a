"""Run or schedule the compiled pipeline on a Kubeflow cluster (`make pipeline-submit` / `pipeline-schedule`).

Scheduled retraining re-executes every step (caching off), never backfills missed intervals and
never overlaps itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def check_cron(expression: str) -> str:
    """KFP schedules take 6 cron fields with leading seconds; a 5-field string silently means something else."""
    fields = expression.split()
    if len(fields) != 6:
        raise ValueError(
            f"cron {expression!r} has {len(fields)} fields; KFP needs 6 (seconds first), e.g. '0 0 3 * * *' for 03:00"
        )
    return expression


DATA_SOURCES = ("dvc_remote_url", "repo_root", "data_git_rev")
"""The pipeline parameters that give ingest a DVC remote to version the data in (a git revision pulls through its own
repo's remote): a cluster's steps share the data only through one."""


def check_params(params: object) -> dict[str, object]:
    """The pipeline parameters: a JSON object naming one of DATA_SOURCES, refused here rather than after a run renders
    data its next step cannot fetch (ingest's own check, `steps.require_remote`, is the rule's source)."""
    if not isinstance(params, dict):
        raise ValueError(f"expected a JSON object of pipeline parameters, got {type(params).__name__}")
    if not any(params.get(name) for name in DATA_SOURCES):
        raise ValueError(
            'the pipeline needs "dvc_remote_url" (s3://bucket/prefix as the pods reach it, e.g. '
            '{"dvc_remote_url": "s3://my-bucket/landmarks"}), a "data_git_rev" of a repo whose DVC config names a '
            'remote, or a "repo_root" inside the image with one: each step runs in a pod of its own and fetches the '
            "data from there"
        )
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["submit", "schedule"])
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow")
    parser.add_argument("--package", type=Path, default=REPO / "build" / "landmarkflow_pipeline.yaml")
    parser.add_argument("--experiment", default="landmarkflow")
    parser.add_argument("--params", default="{}", help='JSON pipeline parameters, e.g. {"gpus": 4}')
    parser.add_argument("--cron", default="0 0 3 * * 0", help="6-field cron (default: Sundays 03:00)")
    args = parser.parse_args()
    try:
        params = check_params(json.loads(args.params))
    except ValueError as exc:  # a JSONDecodeError is one too
        parser.error(f"--params {args.params}: {exc}")
    import kfp

    client = kfp.Client(host=args.host)
    if args.action == "submit":
        run = client.create_run_from_pipeline_package(
            str(args.package), arguments=params, experiment_name=args.experiment, enable_caching=False
        )
        print(f"run {run.run_id}")
        return
    experiment = client.create_experiment(args.experiment)
    job = client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name="landmarkflow-retrain",
        cron_expression=check_cron(args.cron),
        pipeline_package_path=str(args.package),
        params=params,
        max_concurrency=1,
        no_catchup=True,
        enable_caching=False,
    )
    print(f"recurring run {job.recurring_run_id} ({args.cron})")


if __name__ == "__main__":
    main()
