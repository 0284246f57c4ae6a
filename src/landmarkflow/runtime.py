"""What running a deployed model needs, without torch or mlflow: the artifact file names, the deploy metadata,
the crop -> model input step, and the onnxruntime session.

Predict, export's parity check, the registry and training's dataset all use this one module, so a crop means
the same float32 input everywhere and `landmarkflow predict` starts where only onnxruntime is installed.
`onnx` is imported only where a file's metadata is read: it takes seconds to import and predict never needs it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, InvalidGraph, InvalidProtobuf
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

from landmarkflow.geometry import CropSpec, checked_views
from landmarkflow.threads import env_threads

if TYPE_CHECKING:
    import onnx

CHECKPOINT_FILE = "model.pt"
"""Train's weights and config, which evaluate and export load."""
ONNX_FILE = "model.onnx"
"""Export's deployable model, which register logs."""
SHAPE_MODEL_FILE = "shape_model.npz"
"""Export's shape model beside the ONNX of a model with a shape-fitting post-step (LGCN), which register logs with it
and predict applies to the graph's heatmaps."""
ENGINE_PRECISIONS = ("fp16", "fp32")
"""The TensorRT engines export may write beside the ONNX, in the order predict prefers them."""


def engine_file(precision: str) -> str:
    """The file name of export's TensorRT engine of `precision`, written only on a GPU and only if it passed its
    comparison with onnxruntime."""
    if precision not in ENGINE_PRECISIONS:
        raise ValueError(f"unknown engine precision {precision!r}; expected one of {', '.join(ENGINE_PRECISIONS)}")
    return f"model.{precision}.plan"


METADATA_PREFIX = "landmarkflow."
"""The prefix of our keys in ONNX `metadata_props`."""

EXECUTION_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
"""onnxruntime providers in order of preference. Not TensorRT's: predict runs export's own engines, which were
compared with onnxruntime on the test split, instead of engines onnxruntime would build unchecked at start-up."""

ORT_LOAD_ERRORS = (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, OrtNotImplemented)
ORT_MODEL_RUN_ERRORS = (InvalidArgument, OrtNotImplemented)
"""What a loaded session's `run` raises when the model itself cannot answer its inputs: their shape or dtype
rejected, an operator without a kernel. Not Fail, RuntimeException or EPFail, which a machine raises too (memory,
CUDA) and a retry may get past. onnxruntime's errors derive from Exception alone, so they are named."""


_VALUE_CHECKS = {"crop_views": checked_views}
"""The DeployInfo fields checked beyond their type, each by its own check: the constructor applies them, and
`DeployInfo.from_props` first, so that a bad metadata value's error names its key."""


@dataclass(frozen=True)
class DeployInfo:
    """Everything needed to turn an image and a face box into the model's input, and back: a lone .onnx file
    carries it as `metadata_props`, so it can be used without its config."""

    model: str
    layout: str
    num_points: int
    input_size: int
    box_scale: float
    config_hash: str = ""
    upright_above_deg: float = math.inf
    """The upright second pass's roll threshold in degrees (upright.py); infinity: one pass."""
    max_crop_shrink: float = math.inf
    """The most one bilinear step shrinks an image into a crop (geometry.warp_image); infinity: no limit."""
    input_name: str = "images"
    output_name: str = "landmarks"
    heatmap_name: str = ""
    """The graph's second output, the heatmaps a saved shape model is fitted to (LGCN); empty: none."""
    crop_views: tuple[float, ...] = (1.0,)
    """The box sizes a face is read at, the answers averaged (`CropSpec.views`); written comma-separated."""

    def __post_init__(self) -> None:
        for key, check in _VALUE_CHECKS.items():
            object.__setattr__(self, key, check(getattr(self, key)))

    @property
    def crop_spec(self) -> CropSpec:
        """How this model reads a face."""
        return CropSpec(self.input_size, self.box_scale, self.max_crop_shrink, self.crop_views)

    def to_props(self) -> dict[str, str]:
        """Flat string properties for ONNX metadata."""
        return {METADATA_PREFIX + key: _prop_text(value) for key, value in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str | Path = "<onnx>") -> DeployInfo:
        """Parse properties written by `to_props`, naming the missing keys if any."""
        values = {k[len(METADATA_PREFIX) :]: v for k, v in props.items() if k.startswith(METADATA_PREFIX)}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
        if missing:
            keys = [METADATA_PREFIX + m for m in missing]
            raise ValueError(f"{source}: not a landmarkflow model (missing metadata {keys})")
        kinds = {f.name: f.type for f in fields(cls)}
        cast = {"int": int, "float": float, "str": str, "tuple[float, ...]": _floats}
        expected = {"tuple[float, ...]": "comma-separated numbers"}
        parsed = {}
        for key, value in values.items():
            if key in kinds:
                try:
                    parsed[key] = cast[str(kinds[key])](value)
                except ValueError:
                    raise ValueError(
                        f"{source}: metadata {METADATA_PREFIX + key} is {value!r}, expected "
                        f"{expected.get(str(kinds[key]), f'a(n) {kinds[key]}')}"
                    ) from None
        for key, check in _VALUE_CHECKS.items():
            if key in parsed:
                try:
                    parsed[key] = check(parsed[key])
                except ValueError as exc:
                    raise ValueError(f"{source}: metadata {METADATA_PREFIX + key}: {exc}") from None
        return cls(**parsed)

    @classmethod
    def from_proto(cls, proto: onnx.ModelProto, source: str | Path = "<onnx>") -> DeployInfo:
        """The metadata of a loaded ONNX model."""
        return cls.from_props({p.key: p.value for p in proto.metadata_props}, source)

    @classmethod
    def from_file(cls, path: str | Path) -> DeployInfo:
        """The metadata of an ONNX file (external weights are not loaded)."""
        import onnx

        return cls.from_proto(onnx.load(str(path), load_external_data=False), path)

    @classmethod
    def from_session(cls, session: ort.InferenceSession, source: str | Path = "<onnx>") -> DeployInfo:
        """The metadata of the model an onnxruntime session holds."""
        return cls.from_props(session.get_modelmeta().custom_metadata_map, source)


def _prop_text(value: object) -> str:
    """A metadata value as text: tuples comma-separated (what `_floats` reads), the rest as `str` writes them."""
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _floats(text: str) -> tuple[float, ...]:
    """Comma-separated numbers, as `_prop_text` writes a tuple."""
    return tuple(float(v) for v in text.split(","))


def crop_to_input(crop: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB crop -> 3xHxW float32 in [0, 1], the input every model takes.

    The result is a CHW view of channels-last memory (what evaluation has always fed torch); the values are
    bit-identical to torch's `.float().div_(255.0)`. Use np.ascontiguousarray where NCHW memory is needed.
    """
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB crop, got {crop.dtype} of shape {crop.shape}")
    return crop.transpose(2, 0, 1).astype(np.float32) / 255.0


def cut_views(
    spec: CropSpec,
    images: Sequence[np.ndarray],
    boxes: np.ndarray,
    rotations_deg: np.ndarray | Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The (N * V, 2, 3) image -> crop maps and (N * V, 3, S, S) model inputs of face i's V views (`spec.views`) of
    box `boxes[i]` in HxWx3 uint8 RGB `images[i]`, turned by `rotations_deg[i]`: what `spec.to_image` maps back."""
    turns = [0.0] * len(boxes) if rotations_deg is None else rotations_deg
    matrices, crops = [], []
    for image, box, turn in zip(images, boxes, turns, strict=True):
        for matrix in spec.view_matrices(box, float(turn)):
            matrices.append(matrix)
            crops.append(crop_to_input(spec.cut(image, matrix)))
    if not crops:
        return np.zeros((0, 2, 3)), np.zeros((0, 3, spec.size, spec.size), np.float32)
    return np.stack(matrices), np.stack(crops)


def execution_providers() -> list[str]:
    """EXECUTION_PROVIDERS that this onnxruntime build has (CPU always)."""
    available = ort.get_available_providers()
    return [p for p in EXECUTION_PROVIDERS if p in available]


def open_session(path: str | Path, source: str | Path | None = None) -> ort.InferenceSession:
    """An onnxruntime session on the best provider here; a file onnxruntime cannot load is a ValueError that names
    `source` (default: the path)."""
    path = Path(path)
    try:
        return ort.InferenceSession(str(path), _session_options(), providers=execution_providers())
    except ORT_LOAD_ERRORS as exc:
        raise ValueError(f"{source or path}: onnxruntime cannot load {path.name}: {exc}") from exc


def _session_options() -> ort.SessionOptions:
    """OMP_NUM_THREADS (threads.THREADS_ENV), where set, bounds onnxruntime's threads as it bounds PyTorch's.
    onnxruntime sizes its pool to the cores whatever the variable says, and its idle threads spin: beside a busy
    process (`make pipeline-run` runs two branches on one thread each) a batch took 1.34x as long on two threads as
    on one, and the spinning took the other process's core."""
    options = ort.SessionOptions()
    threads = env_threads()
    if threads is not None:
        options.intra_op_num_threads = threads
    return options


def run_onnx(session: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) RGB in [0, 1] -> (N, K, 2) float32 crop-pixel landmarks."""
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(images, dtype=np.float32)}
    return session.run(None, feed)[0]
