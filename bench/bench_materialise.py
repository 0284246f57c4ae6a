"""How long a step's pod takes to get its data: a version fetched by hash from the DVC remote, verified.

Ingests the default synthetic dataset (2000 + 300 faces at 256 px, rendered unless `--source` names a rendered
copy) once into a local-folder remote and once into SeaweedFS S3 (`weed mini` on loopback, as the integration
tests start it), timing the push, then materialises into fresh folders: every file of the version, the train
split's images (what train fetches), and the test split's (evaluate, export). Prints one JSON object per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from landmarkflow import steps  # noqa: E402
from landmarkflow.data.materialise import materialise  # noqa: E402
from landmarkflow.data.synthetic import synthesize  # noqa: E402
from landmarkflow.services import S3_ENDPOINT  # noqa: E402
from landmarkflow.tracking import disable_telemetry  # noqa: E402
from tests.servers import seaweedfs_s3  # noqa: E402

BUCKET = "bench-data"


def measure(ingested: steps.IngestResult, remote: str, scratch: Path, jobs: int, repeats: int) -> None:
    """Materialise all / train / test into fresh folders, `repeats` times each; print the best and the spread."""
    for what, splits in (("all files", "all"), ("train split", ["train"]), ("test split", ["test"])):
        times, result = [], None
        for repeat in range(repeats):
            dest = scratch / f"{remote}-{what.replace(' ', '-')}-{jobs}-{repeat}"
            started = time.perf_counter()
            if splits == "all":
                result = materialise(ingested.data_hash, ingested.data_remote, dest, jobs=jobs)
                files, size = result.files, result.fetched_bytes
            else:
                local = steps.materialise_data(ingested, splits, dest)
                found = [p for p in Path(local.root).rglob("*") if p.is_file()]
                files, size = len(found), sum(p.stat().st_size for p in found)
            times.append(time.perf_counter() - started)
        best = min(times)
        print(
            json.dumps(
                {
                    "bench": "materialise",
                    "remote": remote,
                    "what": what,
                    "jobs": jobs,
                    "files": files,
                    "mb": round(size / 1e6, 1),
                    "seconds_best": round(best, 2),
                    "seconds_all": [round(t, 2) for t in times],
                    "files_per_s": round(files / best),
                    "mb_per_s": round(size / 1e6 / best, 1),
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, help="A rendered synthetic dataset (default: render one)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[16])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    disable_telemetry()
    with tempfile.TemporaryDirectory(prefix="bench-materialise-") as tmp:
        scratch = Path(tmp)
        source = args.source
        if source is None:
            source = scratch / "synthetic"
            synthesize(source, num_train=2000, num_test=300, seed=0, progress=False)
        for remote in ("local", "s3"):
            if remote == "local":
                url = str(scratch / "dvc-remote")
                ingested, pushed = ingest(source, scratch / "local", url)
                print(json.dumps({"bench": "ingest push", "remote": remote, "seconds": round(pushed, 1)}), flush=True)
                for jobs in args.jobs:
                    measure(ingested, remote, scratch, jobs, args.repeats)
                continue
            with seaweedfs_s3(scratch / "weed") as s3:
                s3.client().create_bucket(Bucket=BUCKET)
                os.environ.update({**s3.env, S3_ENDPOINT: s3.endpoint_url})
                ingested, pushed = ingest(source, scratch / "s3", f"s3://{BUCKET}/dvc")
                print(json.dumps({"bench": "ingest push", "remote": remote, "seconds": round(pushed, 1)}), flush=True)
                for jobs in args.jobs:
                    measure(ingested, remote, scratch, jobs, args.repeats)


def ingest(source: Path, work: Path, remote: str) -> tuple[steps.IngestResult, float]:
    started = time.perf_counter()
    ingested = steps.ingest("synthetic", source, work / "manifest.parquet", remote=remote)
    return ingested, time.perf_counter() - started


if __name__ == "__main__":
    main()
