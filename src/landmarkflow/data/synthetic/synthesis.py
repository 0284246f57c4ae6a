"""Render a synthetic dataset: plan its items, then one loop renders each face and hands it to the layout's
files (`LAYOUT_FILES`), which name it, record it and write it. Every file is written atomically.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.synthetic.benchmark_files import BENCHMARK_FILES
from landmarkflow.data.synthetic.layout_files import LayoutFiles, Placement, Written
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS
from landmarkflow.data.synthetic.params import FaceSpec
from landmarkflow.data.synthetic.plan import (
    HARD_TRAIN_FRACTION,
    WIDE_YAW_TRAIN_FRACTION,
    SynthItem,
    item_spec,
    plan,
)
from landmarkflow.data.synthetic.render import RenderedFace, render_face
from landmarkflow.data.synthetic.w300_files import W300_FILES
from landmarkflow.data.synthetic_default import SynthOptions
from landmarkflow.threads import usable_cpus

LAYOUT_FILES: dict[str, LayoutFiles] = {"68": W300_FILES, **BENCHMARK_FILES}
PARALLEL_FROM = 200  # faces: for fewer, starting worker processes costs more than it saves


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

    def count(self, record: FaceRecord) -> None:
        """Count one written face in its image's folder, its split and each of its subsets."""
        folder = record.image_path.rsplit("/", 1)[0]
        self.per_folder[folder] = self.per_folder.get(folder, 0) + 1
        self.per_split[record.split] = self.per_split.get(record.split, 0) + 1
        for subset in record.subsets:
            self.per_subset[subset] = self.per_subset.get(subset, 0) + 1


def placements(items: Sequence[SynthItem], layout: str) -> list[Placement]:
    """Where the planned faces land in the dataset of `layout`, in plan order."""
    place = LAYOUT_FILES[layout].place
    rows_in_split: dict[str, int] = {}
    found = []
    for row, item in enumerate(items):
        split = item.folder.split
        found.append(place(item, row, rows_in_split.get(split, 0)))
        rows_in_split[split] = rows_in_split.get(split, 0) + 1
    return found


def synthesize(
    out_root: str | Path,
    num_train: int,
    num_test: int,
    seed: int = SynthOptions.seed,
    image_size: int = SynthOptions.image_size,
    challenging_fraction: float = 0.2,
    progress: bool = True,
    layout: str = "68",
    workers: int | None = None,
    hard_train_fraction: float = HARD_TRAIN_FRACTION,
    wide_yaw_train_fraction: float = WIDE_YAW_TRAIN_FRACTION,
) -> SynthReport:
    """Render `num_train` + `num_test` faces into a folder as the dataset of `layout`.

    "68" (the default) writes the 300W folder layout (JPEG, .pts, box .mat files) plus `synthetic_meta.csv` with
    each image's parameters and per-point visibility, and refuses a folder that already holds .pts files, so runs
    never mix. "98", "29" or "19" writes the same faces annotated in that layout as a WFLW, COFW or AFLW dataset
    into an empty folder (see `benchmark_files`); `layout_map.LAYOUT_DATASETS` names the dataset to ingest it as.
    `challenging_fraction` of the test faces are the challenging (ibug) subset, as in 300W; `hard_train_fraction`
    of the training faces are drawn from the same hard distribution, and `wide_yaw_train_fraction` more are
    ordinary faces turned up to `params.WIDE_YAW` degrees. Same arguments, same bytes, whatever
    `workers` (processes that render; default: one per CPU for 200 faces or more, else none): every face depends
    on its own spec only, and files are written in plan order.
    """
    if num_train < 0 or num_test < 0:
        raise ValueError(f"image counts must not be negative, got train={num_train} test={num_test}")
    if seed < 0:
        raise ValueError(f"seed must not be negative (it seeds numpy's generators), got {seed}")
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 pixels, got {image_size}")
    for name, fraction in (
        ("challenging_fraction", challenging_fraction),
        ("hard_train_fraction", hard_train_fraction),
        ("wide_yaw_train_fraction", wide_yaw_train_fraction),
    ):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {fraction}")
    if layout not in LAYOUT_DATASETS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUT_DATASETS)}")
    root = Path(out_root)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} is a file; render into a folder (empty or new)")
    files = LAYOUT_FILES[layout]
    items = plan(num_train, num_test, challenging_fraction)
    files.check(root, items)
    report = SynthReport(root=root, images=len(items), image_size=image_size, seed=seed)
    written: list[Written] = []
    start = time.perf_counter()
    specs = [item_spec(seed, item, hard_train_fraction, wide_yaw_train_fraction) for item in items]
    if workers is None:
        workers = default_workers(len(items))
    with _progress_bar(progress, len(items)) as advance:
        faces = _render_all(specs, image_size, workers)
        for item, place, spec, face in zip(items, placements(items, layout), specs, faces, strict=True):
            record = files.record(item, place, spec, face)
            files.write_face(root, record, face)
            written.append(Written(item, spec, record))
            report.count(record)
            advance()
    files.finish(root, seed, written)
    report.seconds = time.perf_counter() - start
    report.images_per_s = len(items) / report.seconds if report.seconds > 0 else 0.0
    return report


def default_workers(faces: int) -> int:
    """Processes to render `faces` in: one per CPU this process may run on from `PARALLEL_FROM` faces, else none."""
    return usable_cpus() if faces >= PARALLEL_FROM else 1


def _render_all(specs: Sequence[FaceSpec], image_size: int, workers: int) -> Iterable[RenderedFace]:
    """The rendered faces in order: in this process, or in `workers` fresh processes ("spawn": the caller may
    hold threads, e.g. torch's, that a fork would copy in a broken state)."""
    if workers <= 1:
        return (render_face(spec, image_size) for spec in specs)
    return _pooled(specs, image_size, workers)


def _pooled(specs: Sequence[FaceSpec], image_size: int, workers: int) -> Iterator[RenderedFace]:
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(render_face, specs, itertools.repeat(image_size), chunksize=8)


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
