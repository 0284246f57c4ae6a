"""Synthetic faces as a WFLW, COFW or AFLW dataset: the very renders of the 300W-layout default (same plan, same
seeds, same images), annotated in the benchmark's layout by `layout_map` and written by that benchmark's own
writer, so that its real reader, and `ingest --dataset wflw|cofw|aflw`, read them.

Where each face goes: train faces in the train split, common and challenging test faces in the test split.
- WFLW: `WFLW_images/<stream number>--<stream>/<stream>_<index>.jpg` (WIDER-style event folders) and the two
  207-field annotation files; the six attribute flags come from the rendering parameters (`wflw_attributes`).
- COFW: `COFW_{train,test}_color.mat` (v7.3, as published), occlusion flag = not visible; the images are also
  left as the PNGs the reader would export.
- AFLW: `AFLWinfo_release.mat` plus `aflw/data/flickr/<stream number>/<stream>_<index>.jpg`; `ra` puts the train
  faces first and the file stores their count (`num_train`), as the 20000 of the release do not apply.
Boxes are the tight box of the 68 points and the layout's points together: the same face box in every layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmarkflow.data.formats import aflw, cofw, wflw
from landmarkflow.data.formats.common import encode_image
from landmarkflow.data.manifest import FaceRecord, landmark_box
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS, annotate
from landmarkflow.data.synthetic.params import FaceSpec
from landmarkflow.data.synthetic.render import render_face
from landmarkflow.data.synthetic.writer import STREAMS, SynthItem, SynthReport, _progress_bar, item_spec
from landmarkflow.fileio import atomic_write_bytes

# WFLW attribute flags from the rendering parameters. WFLW's own are annotators' judgements; these thresholds
# flag roughly the hard tail of each parameter. The renderer has no make-up, so that flag is always 0.
LARGE_YAW = 30.0  # degrees
LARGE_PITCH = 20.0  # degrees
OPEN_MOUTH = 0.5  # Expression.mouth_open, 0 closed .. 1 wide open
STRONG_SMILE = 0.6  # |Expression.smile|
DIM_AMBIENT = 0.7  # Lighting.ambient at or below: a dark face
STRONG_LIGHT = 0.4  # Lighting.strength at or above: a strong light gradient across the face
BLUR_SIGMA = 1.0  # Camera.blur (Gaussian sigma, pixels)
MOTION_BLUR = 2.0  # Camera.motion (pixels); the renderer applies motion blur from this length


def wflw_attributes(spec: FaceSpec, visible: np.ndarray) -> tuple[str, ...]:
    """The WFLW subsets (attribute flags set to 1) of a face, in WFLW's flag order."""
    flags = {
        "largepose": abs(spec.pose.yaw) >= LARGE_YAW or abs(spec.pose.pitch) >= LARGE_PITCH,
        "expression": spec.expression.mouth_open >= OPEN_MOUTH or abs(spec.expression.smile) >= STRONG_SMILE,
        "illumination": spec.lighting.ambient <= DIM_AMBIENT or spec.lighting.strength >= STRONG_LIGHT,
        "makeup": False,
        "occlusion": not bool(np.all(visible)),
        "blur": spec.camera.blur >= BLUR_SIGMA or spec.camera.motion >= MOTION_BLUR,
    }
    return tuple(name for name in wflw.ATTRIBUTES if flags[name])


@dataclass(frozen=True)
class Placement:
    """Where one face lands in a native dataset: its id and image file as the reader will name them."""

    sample_id: str
    image_path: str


def _wflw_place(item: SynthItem, row: int, row_in_split: int) -> Placement:
    image = f"{STREAMS[item.stream]}--{item.stream}/{item.stream}_{item.index:06d}.jpg"
    return Placement(wflw.sample_id(image, 0), f"{wflw.IMAGE_DIR}/{image}")


def _cofw_place(item: SynthItem, row: int, row_in_split: int) -> Placement:
    split = item.folder.split
    return Placement(cofw.sample_id(split, row_in_split), cofw.image_path(split, row_in_split))


def _aflw_place(item: SynthItem, row: int, row_in_split: int) -> Placement:
    image = f"{aflw.IMAGE_DIR}/{STREAMS[item.stream]}/{item.stream}_{item.index:06d}.jpg"
    return Placement(aflw.sample_id(row), image)


def _wflw_subsets(
    spec: FaceSpec, split: str, points: np.ndarray, visible: np.ndarray, bbox: np.ndarray
) -> tuple[str, ...]:
    return wflw_attributes(spec, visible)


def _no_subsets(
    spec: FaceSpec, split: str, points: np.ndarray, visible: np.ndarray, bbox: np.ndarray
) -> tuple[str, ...]:
    return ()


def _aflw_subsets(
    spec: FaceSpec, split: str, points: np.ndarray, visible: np.ndarray, bbox: np.ndarray
) -> tuple[str, ...]:
    return (aflw.FRONTAL,) if split == "test" and aflw.is_frontal(points, visible, bbox) else ()


def _write_wflw(records: Sequence[FaceRecord], root: Path) -> None:
    wflw.write_wflw(records, root)


def _write_cofw(records: Sequence[FaceRecord], root: Path) -> None:
    cofw.write_cofw(records, root)


def _write_aflw(records: Sequence[FaceRecord], root: Path) -> None:
    aflw.write_aflw(records, root, train_faces=sum(r.split == "train" for r in records), store_split=True)


@dataclass(frozen=True)
class NativeFormat:
    """How one layout's benchmark names, flags and writes faces (the images are on disk before `write`), and
    which splits must not be empty for its reader to read the files back."""

    place: Callable[[SynthItem, int, int], Placement]
    # the subsets of a face, from what its record will hold: spec, split, points, visibility, box
    subsets: Callable[[FaceSpec, str, np.ndarray, np.ndarray, np.ndarray], tuple[str, ...]]
    write: Callable[[Sequence[FaceRecord], Path], None]
    needs: tuple[str, ...]


NATIVE_FORMATS: dict[str, NativeFormat] = {
    # WFLW writes both annotation files, and its reader refuses an empty one
    "98": NativeFormat(_wflw_place, _wflw_subsets, _write_wflw, ("train", "test")),
    "29": NativeFormat(_cofw_place, _no_subsets, _write_cofw, ()),
    # AFLW's split takes the train faces first and needs more
    "19": NativeFormat(_aflw_place, _aflw_subsets, _write_aflw, ("test",)),
}


def placements(items: Sequence[SynthItem], layout: str) -> list[Placement]:
    """Where the planned faces land in the native dataset of `layout` ("68": the 300W layout), in plan order."""
    if layout == "68":
        return [Placement(item.sample_id, f"{item.sample_id}.jpg") for item in items]
    place = NATIVE_FORMATS[layout].place
    rows_in_split: dict[str, int] = {}
    found = []
    for row, item in enumerate(items):
        split = item.folder.split
        found.append(place(item, row, rows_in_split.get(split, 0)))
        rows_in_split[split] = rows_in_split.get(split, 0) + 1
    return found


def synthesize_native(
    root: Path,
    items: Sequence[SynthItem],
    seed: int,
    image_size: int,
    challenging_fraction: float,
    layout: str,
    progress: bool,
) -> SynthReport:
    """Render `items` (as `synthesize` plans them) into an empty `root` as the native dataset of `layout`."""
    if root.is_dir() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; render the {LAYOUT_DATASETS[layout]} layout into an empty folder")
    native = NATIVE_FORMATS[layout]
    empty = [split for split in native.needs if not any(item.folder.split == split for item in items)]
    if empty:
        raise ValueError(f"the {LAYOUT_DATASETS[layout]} layout needs {' and '.join(empty)} faces; got none")
    report = SynthReport(root=root, images=len(items), image_size=image_size, seed=seed)
    records: list[FaceRecord] = []
    start = time.perf_counter()
    with _progress_bar(progress, len(items)) as advance:
        for item, place in zip(items, placements(items, layout), strict=True):
            split = item.folder.split
            spec = item_spec(seed, item, challenging_fraction)
            face = render_face(spec, image_size)
            points, visible = annotate(face, spec, layout)
            bbox = landmark_box(np.concatenate([face.landmarks, points]))
            record = FaceRecord(
                sample_id=place.sample_id,
                dataset=LAYOUT_DATASETS[layout],
                split=split,
                subsets=native.subsets(spec, split, points, visible, bbox),
                image_path=place.image_path,
                width=image_size,
                height=image_size,
                bbox=bbox,
                landmarks=points,
                visible=visible,
                layout=layout,
            )
            atomic_write_bytes(root / record.image_path, encode_image(root / record.image_path, face.image))
            records.append(record)
            folder = record.image_path.rsplit("/", 1)[0]
            report.per_folder[folder] = report.per_folder.get(folder, 0) + 1
            report.per_split[split] = report.per_split.get(split, 0) + 1
            for subset in record.subsets:
                report.per_subset[subset] = report.per_subset.get(subset, 0) + 1
            advance()
    native.write(records, root)
    report.seconds = time.perf_counter() - start
    report.images_per_s = len(items) / report.seconds if report.seconds > 0 else 0.0
    return report
