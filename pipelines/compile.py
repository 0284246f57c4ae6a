"""`make pipeline-compile`: write the pipeline's IR YAML for a Kubeflow cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "build" / "landmarkflow_pipeline.yaml")
    args = parser.parse_args()
    from kfp import compiler

    from pipelines.landmarks import landmark_pipeline

    args.output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(landmark_pipeline, package_path=str(args.output))
    print(args.output)


if __name__ == "__main__":
    main()
