"""Render a synthetic dataset into the 300W folder layout (`data.formats.synthetic` reads it back).

Each image has its own RNG, seeded by (seed, stream, index), where the streams are train, common and
challenging: image k of a stream is the same whatever the dataset size, so a small dataset is a prefix
of a large one. Every file is written atomically; the box files and `synthetic_meta.csv` come last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landmarkflow.data.formats.synthetic import write_meta
from landmarkflow.data.formats.w300 import FOLDERS_BY_PATH, W300Folder, write_box_files, write_sample
from landmarkflow.data.manifest import FaceRecord, landmark_box
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS
from landmarkflow.data.synthetic.params import FaceSpec, sample_spec
from landmarkflow.data.synthetic.render import RenderedFace, render_face

STREAMS = {"train": 0, "common": 1, "challenging": 2}


@dataclass(frozen=True)
class SynthItem:
    """One image to render: its stream and index there, and where it goes in the 300W layout."""

    stream: str
    index: int
    folder: W300Folder

    @property
    def sample_id(self) -> str:
        """300W-style id: folder and file stem."""
        return f"{self.folder.path}/{self.stream}_{self.index:06d}"


@dataclass
class SynthReport:
    """What `synthesize` wrote and how fast."""

    root: Path
    images: int
    image_size: int
    seed: int
    per_folder: dict[str, int] = field(default_factory=dict)
    per_split: dict[str, int] = field(default_factory=dict)
    per_subset: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    images_per_s: float = 0.0


def folder_for(stream: str, index: int) -> W300Folder:
    """The 300W folder of image `index` of a stream, in 300W's proportions and independent of the dataset size:
    train 2/20 afw, 5/20 lfpw, 13/20 helen; common test 2/5 lfpw, 3/5 helen; challenging ibug."""
    if stream == "challenging":
        return FOLDERS_BY_PATH["ibug"]
    if stream == "common":
        return FOLDERS_BY_PATH["lfpw/testset" if (index * 3) % 5 < 2 else "helen/testset"]
    slot = (index * 7) % 20  # 7 is prime to 20, so every 20 consecutive images hold the exact proportions
    return FOLDERS_BY_PATH["afw" if slot < 2 else "lfpw/trainset" if slot < 7 else "helen/trainset"]


def plan(num_train: int, num_test: int, challenging_fraction: float = 0.2) -> list[SynthItem]:
    """The images of a dataset: train, then common test, then challenging test (ibug)."""
    num_challenging = round(num_test * challenging_fraction)
    counts = {"train": num_train, "common": num_test - num_challenging, "challenging": num_challenging}
    return [SynthItem(stream, k, folder_for(stream, k)) for stream, count in counts.items() for k in range(count)]


def item_spec(seed: int, item: SynthItem, challenging_fraction: float = 0.2) -> FaceSpec:
    """The face of one item: challenging test faces are hard, and so is that fraction of training faces."""
    rng = np.random.default_rng([seed, STREAMS[item.stream], item.index])
    hard = item.stream == "challenging" or (item.stream == "train" and rng.uniform() < challenging_fraction)
    return sample_spec(rng, hard=hard)


def detector_box(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A face-detector-like box: the brow-to-chin square, jittered in size and position (0-based x1 y1 x2 y2)."""
    top = landmarks[17:27, 1].min()
    bottom = landmarks[:17, 1].max()
    left, right = landmarks[:, 0].min(), landmarks[:, 0].max()
    side = (bottom - top) * rng.uniform(0.95, 1.12)
    centre = np.array([(left + right) / 2, (top + bottom) / 2]) + side * rng.uniform([-0.05, -0.03], [0.05, 0.07])
    return np.concatenate([centre - side / 2, centre + side / 2])


def render_item(
    seed: int, item: SynthItem, image_size: int, challenging_fraction: float = 0.2
) -> tuple[FaceRecord, RenderedFace, np.ndarray, dict[str, object]]:
    """Render one item: its manifest record, the rendered face, a detector box and its meta row."""
    spec = item_spec(seed, item, challenging_fraction)
    face = render_face(spec, image_size)
    record = FaceRecord(
        sample_id=item.sample_id,
        dataset="synthetic",
        split=item.folder.split,
        subsets=list(item.folder.subsets),
        image_path=f"{item.sample_id}.jpg",
        width=image_size,
        height=image_size,
        bbox=landmark_box(face.landmarks),
        landmarks=face.landmarks,
        visible=face.visible,
        layout="68",
    )
    box = detector_box(face.landmarks, np.random.default_rng([seed, STREAMS[item.stream], item.index, 1]))
    return record, face, box, _meta_row(item, spec, face)


def _meta_row(item: SynthItem, spec: FaceSpec, face: RenderedFace) -> dict[str, object]:
    hidden = int((~face.visible).sum())
    return {
        "sample_id": item.sample_id,
        "stream": item.stream,
        "hard": int(spec.hard),
        "yaw": round(spec.pose.yaw, 3),
        "pitch": round(spec.pose.pitch, 3),
        "roll": round(spec.pose.roll, 3),
        "mouth_open": round(spec.expression.mouth_open, 3),
        "smile": round(spec.expression.smile, 3),
        "brow_raise": round(spec.expression.brow_raise, 3),
        "eye_open": round(spec.expression.eye_open, 3),
        "face_size": round(spec.face_size, 3),
        "hair": spec.hair.kind,
        "occluder": "+".join(o.kind for o in spec.occluders) or "none",
        "occluded": int(hidden > 0),
        "occluded_points": hidden,
        "blur": round(spec.camera.blur, 3),
        "motion_blur": round(spec.camera.motion, 3),
        "noise": round(spec.camera.noise, 3),
        "grayscale": int(spec.camera.grayscale),
        "light_angle": round(spec.lighting.angle, 1),
        "light_strength": round(spec.lighting.strength, 3),
        "visible": "".join("1" if v else "0" for v in face.visible.tolist()),
    }


def synthesize(
    out_root: str | Path,
    num_train: int,
    num_test: int,
    seed: int = 0,
    image_size: int = 256,
    challenging_fraction: float = 0.2,
    progress: bool = True,
    layout: str = "68",
) -> SynthReport:
    """Render `num_train` + `num_test` faces into an empty folder in the 300W layout (JPEG, .pts, box .mat
    files) plus `synthetic_meta.csv` with each image's parameters and per-point visibility.

    `layout` "98", "29" or "19" writes the same faces annotated in that layout as a WFLW, COFW or AFLW dataset
    instead (see `native`); `layout_map.LAYOUT_DATASETS` names the dataset to ingest it as.
    Same arguments, same bytes. Refuses a folder that already holds .pts files, so runs never mix.
    """
    if num_train < 0 or num_test < 0:
        raise ValueError(f"image counts must not be negative, got train={num_train} test={num_test}")
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 pixels, got {image_size}")
    if not 0.0 <= challenging_fraction <= 1.0:
        raise ValueError(f"challenging_fraction must lie in [0, 1], got {challenging_fraction}")
    if layout not in LAYOUT_DATASETS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUT_DATASETS)}")
    root = Path(out_root)
    if layout != "68":
        from landmarkflow.data.synthetic.native import synthesize_native

        items = plan(num_train, num_test, challenging_fraction)
        return synthesize_native(root, items, seed, image_size, challenging_fraction, layout, progress)
    existing = sum(1 for _ in root.rglob("*.pts")) if root.is_dir() else 0
    if existing:
        raise FileExistsError(f"{root} already holds {existing} .pts files; remove it or render into an empty folder")
    items = plan(num_train, num_test, challenging_fraction)
    report = SynthReport(root=root, images=len(items), image_size=image_size, seed=seed)
    records: list[FaceRecord] = []
    detector_boxes: dict[str, np.ndarray] = {}
    rows: list[dict[str, object]] = []
    start = time.perf_counter()
    with _progress_bar(progress, len(items)) as advance:
        for item in items:
            record, face, box, row = render_item(seed, item, image_size, challenging_fraction)
            write_sample(root, record, face.image)
            records.append(record)
            detector_boxes[record.sample_id] = box
            rows.append(row)
            report.per_folder[item.folder.path] = report.per_folder.get(item.folder.path, 0) + 1
            report.per_split[record.split] = report.per_split.get(record.split, 0) + 1
            for subset in record.subsets:
                report.per_subset[subset] = report.per_subset.get(subset, 0) + 1
            advance()
    write_box_files(root, records, detector_boxes)
    write_meta(root, rows)
    report.seconds = time.perf_counter() - start
    report.images_per_s = len(items) / report.seconds if report.seconds > 0 else 0.0
    return report


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar when enabled; either way, a function to call once per image."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("rendering faces"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("render", total=total)
        yield lambda: bar.advance(task)
