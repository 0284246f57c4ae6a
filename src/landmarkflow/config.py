"""Experiment configuration: one YAML per (model, dataset, size), validated by pydantic.

Unknown keys are errors everywhere, and an error names the file and the dotted field that is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from landmarkflow.geometry import CropSpec, checked_views
from landmarkflow.layouts import LAYOUTS
from landmarkflow.models.params.base import ModelParams
from landmarkflow.models.zoo import parse_params


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Which dataset, where its files are, and how faces are cropped."""

    dataset: str = "synthetic"
    layout: str = "68"
    root: str = "data/raw/synthetic"
    box_scale: float = Field(1.25, gt=0.5, le=4.0, description="crop side / max(box w, box h)")
    upright_above_deg: float | None = Field(
        None,
        gt=0,
        lt=90,
        description="predict a face again on a crop turned upright when the first answer's eye line rolls more than "
        "this many degrees (upright.py); None: one pass",
    )
    max_crop_shrink: float | None = Field(
        None,
        ge=1.0,
        description="the most one bilinear step may shrink an image into a crop (set it to the most the training "
        "crops shrink, so that a model never reads a face sampled more coarsely than it learnt on): a bigger face is "
        "first reduced by pixel-area averaging (geometry.warp_image), in training and inference alike; None: no limit",
    )
    crop_views: tuple[Annotated[float, Field(ge=0.5, le=2.0)], ...] = Field(
        (1.0,),
        min_length=1,
        description="read each face at these sizes of its crop (x box_scale), map every answer back to the image and "
        "average them, wherever a face is predicted: evaluation, validation (so `train.keep: best_val` chooses on "
        "them), the shape calibration (fitted on the averaged answers), the upright pass, export's parity gate, "
        "predict and serve; training crops are cut once, their size jittered instead (augment.scale_range). "
        "Distinct; [1.0]: one crop",
    )
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5, description="share of train held out for per-epoch NME")
    test_split: str = "test"
    normaliser: str | None = Field(None, description="NME normaliser; None = the layout's default")
    max_drift: float | None = Field(
        None,
        gt=0,
        le=1,
        description="stop the run before training when a face feature (pose, box, eyes, visibility, image size) moved "
        "further than this from the data the model's champion was trained on, as a Kolmogorov-Smirnov statistic "
        "(0 same, 1 disjoint; None: report drift, never stop)",
    )

    @field_validator("crop_views")
    @classmethod
    def _distinct_views(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return checked_views(value)

    @field_validator("layout")
    @classmethod
    def _known_layout(cls, value: str) -> str:
        if value not in LAYOUTS:
            raise ValueError(f"unknown layout {value!r}; expected one of {', '.join(LAYOUTS)}")
        return value

    @model_validator(mode="after")
    def _layout_has_normaliser(self) -> DataConfig:
        """A normaliser the layout lacks would otherwise surface as a KeyError at the first validation, after an
        epoch of training."""
        known = LAYOUTS[self.layout].normalisers
        if self.normaliser is not None and self.normaliser not in known:
            raise ValueError(
                f"data.normaliser {self.normaliser!r} is not a normaliser of layout {self.layout}: expected one of "
                f"{', '.join(known)}, or none for {LAYOUTS[self.layout].default_normaliser}"
            )
        return self


def _low_high(value: tuple[float, float], zero_allowed: bool) -> tuple[float, float]:
    """A factor's (low, high) range: in order, and above zero unless 0 (none of it) means something."""
    low, high = value
    if low < 0 or (low == 0 and not zero_allowed) or low > high:
        bound = "0 <= low" if zero_allowed else "0 < low"
        raise ValueError(f"expected (low, high) with {bound} <= high, got {list(value)}")
    return value


class AugmentConfig(_Section):
    """Online augmentation, applied to training crops only."""

    flip_prob: float = Field(0.5, ge=0, le=1)
    rotation_deg: float = Field(30.0, ge=0, le=180)
    rotation_prob: float = Field(0.5, ge=0, le=1)
    scale_range: tuple[float, float] = (0.9, 1.25)
    shift_fraction: float = Field(0.08, ge=0, le=0.5, description="box-centre jitter, fraction of crop side")
    blur_prob: float = Field(0.2, ge=0, le=1)
    occlusion_prob: float = Field(0.3, ge=0, le=1)
    color_jitter: float = Field(0.2, ge=0, le=1, description="per-channel gain range +-")
    saturation_prob: float = Field(0.0, ge=0, le=1, description="chance of a colour saturation change")
    saturation_range: tuple[float, float] = Field(
        (0.5, 1.2), description="the saturation factor's range: 0 grey, 1 the colours as they are"
    )
    tone_prob: float = Field(0.0, ge=0, le=1, description="chance of a random gamma, contrast and brightness curve")
    grayscale_prob: float = Field(0.0, ge=0, le=1, description="chance of a grey crop")
    sharpen_prob: float = Field(0.0, ge=0, le=1, description="chance of an unsharp mask (photos' crisp detail)")
    noise_prob: float = Field(0.0, ge=0, le=1, description="chance of Gaussian sensor noise (sigma 2-10 grey levels)")

    @field_validator("scale_range")
    @classmethod
    def _scale_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _low_high(value, zero_allowed=False)

    @field_validator("saturation_range")
    @classmethod
    def _saturation_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _low_high(value, zero_allowed=True)


class TrainConfig(_Section):
    """Optimisation and schedule."""

    epochs: int = Field(60, ge=1)
    batch_size: int = Field(
        16,
        ge=1,
        description="the global batch of one optimiser step: each of N DDP processes loads batch_size / N faces "
        "(it must divide evenly), so a config trains alike on 1 or N processes",
    )
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.9, 0.999), description="Adam/AdamW moment decays, each in [0, 1)"
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(False, description="SGD with Nesterov momentum")
    grad_clip_value: float | None = Field(
        None, gt=0, description="clip every gradient element to +-this before the step (None: no clipping)"
    )
    val_every: int = Field(
        1,
        ge=1,
        description="validate every this many epochs and after the last; the others record no val_nme (nan): each "
        "validation predicts every held-out face (twice with the flip test)",
    )
    keep: Literal["last", "best_val"] = Field(
        "last", description="which epoch's weights become model.pt: the last, or the best validation NME"
    )
    schedule: Literal["step", "cosine"] = Field(
        "step", description="step: x gamma at each milestone epoch; cosine: anneal to 0 over all epochs"
    )
    milestones: tuple[int, ...] = Field((30, 50), description="step schedule: the epochs (from 1, rising) it decays at")
    gamma: float = Field(0.1, gt=0, le=1)
    warmup_epochs: int = Field(0, ge=0)
    seed: int = 1234
    num_workers: int = Field(2, ge=0)
    cache_images: bool = Field(
        False,
        description="keep every decoded training image in memory after its first epoch (in each loader process): "
        "for small datasets, e.g. 2000 faces at 256 px take 0.4 GB",
    )
    amp: bool = Field(
        False, description="mixed precision: float16 on CUDA, bfloat16 on CPUs with native bf16; else float32"
    )
    max_steps_per_epoch: int | None = Field(None, ge=1)

    @field_validator("milestones")
    @classmethod
    def _rising(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(m < 1 for m in value) or list(value) != sorted(set(value)):
            raise ValueError(f"expected rising epochs from 1 on, got {list(value)}")
        return value


class EvalConfig(_Section):
    """Evaluation protocol."""

    fr_threshold: float = Field(0.10, gt=0)
    auc_threshold: float = Field(0.10, gt=0)
    overlay_count: int = Field(16, ge=0)
    batch_size: int = Field(32, ge=1, description="crops a model call reads: batch_size // len(data.crop_views) faces")
    perturb_shift: float = Field(0.2, ge=0, description="perturbed-box eval: centre moved by up to this x box size")
    perturb_scale: tuple[float, float] = Field((0.8, 1.5), description="perturbed-box eval: box size factor range")
    perturb_seed: int = 0

    @field_validator("perturb_scale")
    @classmethod
    def _scale_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _low_high(value, zero_allowed=False)


class GateConfig(_Section):
    """Promotion gates (DESIGN.md): absolute NME, vs champion, ONNX parity."""

    max_nme: float = Field(0.08, gt=0, description="test NME (a fraction: 0.08 is 8%) must be below this")
    min_baseline_ratio: float | None = Field(
        None, gt=1, description="mean-shape NME / test NME on the same test split must reach this (None: no check)"
    )
    max_real_nme: float | None = Field(
        None,
        gt=0,
        description="NME (fraction) on the real faces given to evaluate must be below this; applied only when "
        "evaluate measured real faces (None: no check)",
    )
    champion_tolerance: float = Field(0.0005, ge=0, description="allowed NME excess over the champion")
    parity_tolerance: float = Field(1e-4, ge=0, description="max |NME(onnx) - NME(torch)|")


EnginePrecision = Literal["fp32", "fp16"]
"""The TensorRT engines export builds on a GPU: FP32, and FP16 through ModelOpt AutoCast (export/tensorrt.py)."""


class ExportConfig(_Section):
    """ONNX export settings, and the TensorRT engines built and compared when export runs on a GPU."""

    opset: int = Field(18, ge=17, le=23)
    parity_max_images: int = Field(256, ge=1)
    engine_tolerance: dict[EnginePrecision, float] = Field(
        # FP32 (TF32 off) differs from onnxruntime only in summation order: an argmax decode flips on a rare
        # near-tie, so twice the ONNX gate. FP16 rounds every activation to 11 bits: 0.2% of the normaliser.
        {"fp32": 2e-4, "fp16": 2e-3},
        description="an engine per precision named here, kept only if |NME(engine) - NME(onnxruntime)| on the "
        "test split is at most this (NME fraction, not %)",
    )
    latency_batches: tuple[int, ...] = Field((1, 16), description="batch sizes export times each runtime at on a GPU")

    @field_validator("engine_tolerance")
    @classmethod
    def _non_negative(cls, value: dict[EnginePrecision, float]) -> dict[EnginePrecision, float]:
        negative = {k: v for k, v in value.items() if not v >= 0}
        if negative:
            raise ValueError(f"tolerances must be >= 0, got {negative}")
        return value

    @field_validator("latency_batches")
    @classmethod
    def _positive_batches(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError(f"expected one or more batch sizes >= 1, got {list(value)}")
        return value


class ReferenceConfig(_Section):
    """What the paper reports for this configuration, for `landmarkflow models list` to compare against."""

    source: str = Field(description="paper, table or figure the numbers come from")
    params_m: float | None = Field(None, gt=0, description="parameters in millions, as the authors count them")
    gflops: float | None = Field(None, gt=0, description="GFLOPs per forward pass at input_size, if reported")


class ExperimentConfig(_Section):
    """A whole experiment: model, data, augmentation, training, evaluation, gates, export."""

    name: str
    reference: ReferenceConfig | None = None
    model: ModelParams
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()
    export: ExportConfig = ExportConfig()

    @field_validator("model", mode="before")
    @classmethod
    def _model_params(cls, value: Any) -> ModelParams:
        if isinstance(value, ModelParams):
            return value
        if not isinstance(value, dict):
            raise ValueError("model must be a mapping with at least a 'name'")
        return parse_params(value)

    @property
    def crop_spec(self) -> CropSpec:
        """How this experiment's model reads a face (no `data.max_crop_shrink`: no limit)."""
        limit = self.data.max_crop_shrink
        return CropSpec(
            self.model.input_size, self.data.box_scale, math.inf if limit is None else limit, self.data.crop_views
        )

    @model_validator(mode="after")
    def _points_match_layout(self) -> ExperimentConfig:
        expected = LAYOUTS[self.data.layout].num_points
        if self.model.num_points != expected:
            raise ValueError(
                f"model.num_points is {self.model.num_points} but data.layout {self.data.layout} has {expected} points"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict (model params included with their concrete fields)."""
        return {**self.model_dump(mode="json"), "model": self.model.model_dump(mode="json")}

    def config_hash(self) -> str:
        """Short stable hash of the validated config: the lineage tag for 'which recipe'."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class ConfigError(ValueError):
    """A config file is missing, unparsable or invalid; the message names the file and the fields."""


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid config"]
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str | Path = "<config>") -> ExperimentConfig:
    """Validate an already-loaded mapping."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(Path(source), exc)) from None


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping of a YAML file."""

    def __init__(self, key: str, first_line: int, line: int) -> None:
        super().__init__(f"line {line}: {key!r} is given twice in one mapping (first on line {first_line})")


MERGE_TAG = "tag:yaml.org,2002:merge"
"""The tag of YAML's `<<` key, which merges an anchored mapping in and is no key of its own."""


class _UniqueKeysLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the later value and drops the
    earlier without a word, so a config edited in two places would silently run with half of the edit. Keys merged in
    by `<<` may be overridden, as YAML means them to be."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # PyYAML refuses it in the mapping itself, with its own message
            line = key_node.start_mark.line + 1
            if key in first_lines:
                written = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key)
                raise _DuplicateKey(written, first_lines[key], line)
            first_lines[key] = line
        return super().construct_mapping(node, deep)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load and validate a YAML config; `overrides` maps dotted keys ('train.epochs') to values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeysLoader) or {}
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for depth, key in enumerate(parents, 1):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                section = ".".join(parents[:depth])
                raise ConfigError(f"{path}: {section} must be a mapping to set {dotted}, got {node!r}")
        node[leaf] = value
    return parse_config(raw, path)
