"""The size of the embedded default dataset: what `make pipeline-run`, `landmarkflow data synth` and an ingest of an
empty synthetic folder render. A module of its own, without the renderer, so the CLI and the pipeline definition read
their defaults from here at import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SynthOptions:
    """How to render the synthetic default when its folder is empty."""

    num_train: int = 2000
    num_test: int = 300
    seed: int = 0
    image_size: int = 256
