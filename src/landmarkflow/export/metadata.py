"""What a deployed model must carry so that a lone .onnx file can be used without its config.

Stored as ONNX `metadata_props` (string key/value pairs) under the `landmarkflow.` prefix.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

PREFIX = "landmarkflow."


@dataclass(frozen=True)
class DeployInfo:
    """Everything needed to turn an image and a face box into the model's input, and back."""

    model: str
    layout: str
    num_points: int
    input_size: int
    box_scale: float
    config_hash: str = ""
    input_name: str = "images"
    output_name: str = "landmarks"

    def to_props(self) -> dict[str, str]:
        """Flat string properties for ONNX metadata."""
        return {PREFIX + key: str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str | Path = "<onnx>") -> DeployInfo:
        """Parse properties written by `to_props`, naming the missing keys if any."""
        values = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
        if missing:
            raise ValueError(f"{source}: not a landmarkflow model (missing metadata {[PREFIX + m for m in missing]})")
        kinds = {f.name: f.type for f in fields(cls)}
        cast = {"int": int, "float": float, "str": str}
        return cls(**{k: cast[str(kinds[k])](v) for k, v in values.items() if k in kinds})
