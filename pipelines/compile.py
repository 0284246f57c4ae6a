"""`make pipeline-compile`: write the pipeline's IR YAML for a Kubeflow cluster.

Two things are fixed at compile time: the image every step runs in (LANDMARKFLOW_IMAGE, which `make
pipeline-compile` sets to the image `make image` tagged with the commit) and the Kubernetes Secret every step takes
its environment from (--secret). The pipeline's modules read both when they are imported.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from landmarkflow.services import DEFAULT_SECRET, SECRET_ENV, SECRET_NAME_ENV

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "build" / "landmarkflow_pipeline.yaml")
    parser.add_argument(
        "--secret",
        default=os.environ.get(SECRET_NAME_ENV) or DEFAULT_SECRET,
        help=f"Kubernetes Secret with the keys {', '.join(SECRET_ENV)} (default: %(default)s)",
    )
    args = parser.parse_args()
    os.environ[SECRET_NAME_ENV] = args.secret
    from kfp import compiler

    from components.image import IMAGE
    from pipelines.landmarks import landmark_pipeline

    args.output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(landmark_pipeline, package_path=str(args.output))
    print(f"{args.output}: image {IMAGE}, Secret {args.secret}")


if __name__ == "__main__":
    main()
