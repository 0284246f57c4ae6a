"""`python -m landmarkflow.train`: the entry point torchrun starts on every rank."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from landmarkflow.config import load_config
from landmarkflow.train.run import fit_from_manifest


@record
def main() -> None:
    """Under torchrun, an exception also goes to the rank's error file, from which torchrun's failure report (and so
    the train step's error) quotes it."""
    parser = argparse.ArgumentParser(description="Train one landmark model (run it under torchrun for DDP).")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--overrides", default="{}", help="JSON object of dotted config keys")
    args = parser.parse_args()
    config = load_config(args.config, json.loads(args.overrides))
    fit_from_manifest(config, args.manifest, args.root, args.out, args.run_id)


if __name__ == "__main__":
    main()
