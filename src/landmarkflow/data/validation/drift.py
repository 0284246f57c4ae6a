"""Data drift: how far a dataset's faces moved from the faces a champion was trained on.

Each face is reduced to a few numbers a model is sensitive to: a yaw proxy (the nose's offset from the eyes' midpoint
along the eye line, in inter-ocular distances), the roll (the eye line's angle), the face box's size, the
inter-ocular distance, the share of visible points and the image's size. A dataset's profile keeps, per feature, its
quantiles (a fixed, small number), which is all a comparison needs: the validate step logs the profile with its data
hash, and a later validation fetches the profile of the data a champion was trained on from MLflow by that hash.
Two profiles are compared per feature by the Kolmogorov-Smirnov statistic of their quantiles (the largest gap between
the two cumulative distributions: 0 same, 1 disjoint), which needs no bins and handles a constant feature (every
synthetic image is 256 px).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from landmarkflow.fileio import atomic_path, atomic_write_text
from landmarkflow.layouts import face_regions, get_layout

FEATURES: dict[str, str] = {
    "yaw": "head turn: nose offset from the eyes' midpoint, in eye distances",
    "roll": "head tilt: eye-line angle, degrees",
    "box_size": "face box side, px",
    "inter_ocular": "distance between the eyes, px",
    "visible": "share of points visible",
    "image_size": "image side, px",
}
QUANTILES = 101
"""Quantiles kept per feature (every 1%): the KS statistic between two profiles is exact to about 0.01."""
MOVED_KS = 0.1
"""A feature is reported as moved when its KS statistic reaches this and chance alone would not explain it (see
`chance_ks`): two renderings of the synthetic default (2300 faces, seeds 0 and 1) differ by at most 0.04, while two
samples of 48 faces from one renderer reached 0.18."""
CHANCE_C = 1.63
"""Two samples of n and m faces from one distribution exceed KS c * sqrt((n + m) / (n m)) with probability 1%."""
PROFILE_FILE = "data_profile.json"
DRIFT_FILE = "drift.json"
DRIFT_PLOT = "drift.png"


@dataclass(frozen=True)
class DataProfile:
    """A dataset's faces as per-feature quantiles, tied to its data hash."""

    data_hash: str
    faces: int
    quantiles: dict[str, list[float]]

    def save(self, path: str | Path) -> Path:
        atomic_write_text(path, json.dumps(asdict(self), indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> DataProfile:
        raw = json.loads(Path(path).read_text())
        missing = [key for key in ("data_hash", "faces", "quantiles") if key not in raw]
        if missing or set(raw["quantiles"]) != set(FEATURES):
            raise ValueError(
                f"{path}: not a data profile (missing {', '.join(missing) or 'features'}; expected the features "
                f"{', '.join(FEATURES)})"
            )
        return cls(raw["data_hash"], int(raw["faces"]), {k: list(map(float, v)) for k, v in raw["quantiles"].items()})


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's move: its KS statistic and medians, and a line that says it in words."""

    feature: str
    ks: float
    reference_median: float
    new_median: float
    moved: bool
    line: str


@dataclass(frozen=True)
class DriftReport:
    """How far the new data moved from one reference (the data `models` were trained on)."""

    reference_hash: str
    models: list[str]
    features: list[FeatureDrift]

    @property
    def max_ks(self) -> float:
        return max(f.ks for f in self.features)

    @property
    def moved(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.moved]

    def summary(self) -> str:
        against = f"the data of {', '.join(self.models)} ({self.reference_hash})"
        if not self.moved:
            return f"no feature moved from {against} (largest KS {self.max_ks:.2f})"
        return f"moved from {against}: " + "; ".join(f.line for f in self.moved)

    def to_dict(self) -> dict[str, object]:
        return {"max_ks": self.max_ks, "summary": self.summary(), **asdict(self)}


def face_features(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every feature of every face of a manifest frame, in row order (NaN where a face has no eyes apart)."""
    n = len(frame)
    yaw, roll, inter_ocular = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for layout, rows in frame.groupby("layout", sort=False).indices.items():
        points = np.stack([np.stack(p).astype(np.float64) for p in frame["landmarks"].iloc[rows]])
        yaw[rows], roll[rows], inter_ocular[rows] = head_pose(points, str(layout))
    boxes = np.stack([np.asarray(b, dtype=np.float64) for b in frame["bbox"]]) if n else np.zeros((0, 4))
    sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    return {
        "yaw": yaw,
        "roll": roll,
        "box_size": np.sqrt(sides[:, 0] * sides[:, 1]),
        "inter_ocular": inter_ocular,
        "visible": np.array([np.asarray(v, dtype=bool).mean() for v in frame["visible"]], dtype=np.float64),
        "image_size": np.sqrt(frame["width"].to_numpy(np.float64) * frame["height"].to_numpy(np.float64)),
    }


def head_pose(points: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face of (N, K, 2) landmarks in `layout`: the yaw proxy (the nose's offset from the eyes' midpoint along
    the eye line, in eye distances; NaN where the eyes coincide), the roll (the eye line's angle, degrees) and the
    inter-ocular distance."""
    right, left, nose = _eye_and_nose_points(layout)
    right_eye, left_eye = points[:, right].mean(axis=1), points[:, left].mean(axis=1)
    eye_line = left_eye - right_eye
    distance = np.linalg.norm(eye_line, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        along = ((points[:, nose].mean(axis=1) - (right_eye + left_eye) / 2) * eye_line).sum(axis=1) / distance
        yaw = along / distance
    return yaw, np.degrees(np.arctan2(eye_line[:, 1], eye_line[:, 0])), distance


def _eye_and_nose_points(layout: str) -> tuple[list[int], list[int], list[int]]:
    """The eye points on the subject's right and left (a point and its mirror image, from the flip table) and the
    nose points of a layout; a point that is its own mirror image (none in the eyes) belongs to neither side."""
    regions, flip = face_regions(layout), get_layout(layout).flip_permutation
    eyes = regions["eyes"]
    return [i for i in eyes if i < flip[i]], [flip[i] for i in eyes if i < flip[i]], list(regions["nose"])


def profile_faces(frame: pd.DataFrame, data_hash: str) -> DataProfile:
    """The profile of a manifest frame: each feature's quantiles over its finite values ([] when it has none)."""
    levels = np.linspace(0, 1, QUANTILES)
    quantiles = {}
    for name, values in face_features(frame).items():
        finite = values[np.isfinite(values)]
        quantiles[name] = [round(float(v), 6) for v in np.quantile(finite, levels)] if finite.size else []
    return DataProfile(data_hash, len(frame), quantiles)


def ks_statistic(a: list[float], b: list[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of two quantile lists (each taken as an equal-weight sample)."""
    if not a or not b:
        return 0.0 if not a and not b else 1.0
    sa, sb = np.sort(a), np.sort(b)
    grid = np.concatenate([sa, sb])
    cdf_a = np.searchsorted(sa, grid, side="right") / sa.size
    cdf_b = np.searchsorted(sb, grid, side="right") / sb.size
    return float(np.abs(cdf_a - cdf_b).max())


def compare(new: DataProfile, reference: DataProfile, models: list[str]) -> DriftReport:
    """Per feature, how far `new` moved from `reference`, the data `models` were trained on."""
    features = []
    for name, meaning in FEATURES.items():
        ours, theirs = new.quantiles[name], reference.quantiles[name]
        ks = ks_statistic(ours, theirs)
        was, now = _median(theirs), _median(ours)
        moved = ks >= max(MOVED_KS, chance_ks(new.faces, reference.faces))
        line = f"{name} ({meaning}) {'moved' if moved else 'kept'}: median {was:.3g} -> {now:.3g}, KS {ks:.2f}"
        features.append(FeatureDrift(name, round(ks, 4), was, now, moved, line))
    return DriftReport(reference.data_hash, models, features)


def chance_ks(n: int, m: int) -> float:
    """The KS statistic that samples of n and m faces of one distribution exceed by chance 1% of the time."""
    return CHANCE_C * float(np.sqrt((n + m) / (n * m))) if n and m else 1.0


def _median(quantiles: list[float]) -> float:
    return float(np.median(quantiles)) if quantiles else float("nan")


def plot_drift(new: DataProfile, references: dict[str, DataProfile], path: str | Path) -> Path:
    """One panel per feature: the cumulative distribution of the new data and of each reference (KS is the largest
    vertical gap between two curves)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 7), layout="constrained")
    levels = np.linspace(0, 1, QUANTILES)
    for index, name in enumerate(FEATURES):
        axes = figure.add_subplot(2, 3, index + 1)
        for label, profile, style in (
            *((f"trained on: {label}", profile, "--") for label, profile in references.items()),
            (f"new: {new.data_hash[:12]}", new, "-"),
        ):
            if profile.quantiles[name]:
                axes.step(profile.quantiles[name], levels, where="post", linestyle=style, label=label)
        gaps = [ks_statistic(new.quantiles[name], ref.quantiles[name]) for ref in references.values()]
        axes.set_title(f"{name} (KS {max(gaps, default=0.0):.2f})")
        axes.set_ylabel("share of faces")
        axes.grid(alpha=0.3)
    figure.axes[0].legend(fontsize="small")
    FigureCanvasAgg(figure)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    return Path(path)
