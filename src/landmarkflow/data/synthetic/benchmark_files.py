"""The 98, 29 and 19-point layouts' files: synthetic faces as a WFLW, COFW or AFLW dataset, annotated in the
benchmark's layout by `layout_map` and written by that benchmark's own writer, so that its real reader, and
`ingest --dataset wflw|cofw|aflw`, read them. They are the very renders of the 68-point layout (same plan, same
seeds, same images).

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

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from landmarkflow.data.formats import aflw, cofw, wflw
from landmarkflow.data.formats.common import encode_image
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.synthetic.layout_files import LayoutFiles, Placement, Written
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS, annotate
from landmarkflow.data.synthetic.params import FaceSpec
from landmarkflow.data.synthetic.plan import STREAMS, SynthItem
from landmarkflow.data.synthetic.render import RenderedFace
from landmarkflow.fileio import atomic_write_bytes
from landmarkflow.geometry import landmark_box

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

# A benchmark's subsets of one face, from what its record will hold: spec, split, points, visibility, box.
Subsets = Callable[[FaceSpec, str, np.ndarray, np.ndarray, np.ndarray], tuple[str, ...]]


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


def _write_aflw(records: Sequence[FaceRecord], root: Path) -> None:
    aflw.write_aflw(records, root, train_faces=sum(r.split == "train" for r in records), store_split=True)


def _check(layout: str, needs: tuple[str, ...], root: Path, items: Sequence[SynthItem]) -> None:
    """An empty folder, and a face in every split that the benchmark's reader needs non-empty."""
    if root.is_dir() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; render the {LAYOUT_DATASETS[layout]} layout into an empty folder")
    empty = [split for split in needs if not any(item.folder.split == split for item in items)]
    if empty:
        raise ValueError(f"the {LAYOUT_DATASETS[layout]} layout needs {' and '.join(empty)} faces; got none")


def _record(
    layout: str, subsets: Subsets, item: SynthItem, place: Placement, spec: FaceSpec, face: RenderedFace
) -> FaceRecord:
    points, visible = annotate(face, spec, layout)
    bbox = landmark_box(np.concatenate([face.landmarks, points]))
    split = item.folder.split
    height, width = face.image.shape[:2]
    return FaceRecord(
        sample_id=place.sample_id,
        dataset=LAYOUT_DATASETS[layout],
        split=split,
        subsets=subsets(spec, split, points, visible, bbox),
        image_path=place.image_path,
        width=width,
        height=height,
        bbox=bbox,
        landmarks=points,
        visible=visible,
        layout=layout,
    )


def _write_image(root: Path, record: FaceRecord, face: RenderedFace) -> None:
    atomic_write_bytes(root / record.image_path, encode_image(root / record.image_path, face.image))


def _finish(
    write: Callable[[Sequence[FaceRecord], Path], None], root: Path, seed: int, written: Sequence[Written]
) -> None:
    write([w.record for w in written], root)


def _benchmark_files(
    layout: str,
    place: Callable[[SynthItem, int, int], Placement],
    subsets: Subsets,
    write: Callable[[Sequence[FaceRecord], Path], None],
    needs: tuple[str, ...],
) -> LayoutFiles:
    """The files of a benchmark that names faces by `place`, flags them by `subsets`, writes its annotations with
    `write` once the images are on disk, and whose reader needs faces in the splits `needs`."""
    return LayoutFiles(
        check=partial(_check, layout, needs),
        place=place,
        record=partial(_record, layout, subsets),
        write_face=_write_image,
        finish=partial(_finish, write),
    )


BENCHMARK_FILES: dict[str, LayoutFiles] = {
    "98": _benchmark_files("98", _wflw_place, _wflw_subsets, wflw.write_wflw, ()),
    "29": _benchmark_files("29", _cofw_place, _no_subsets, cofw.write_cofw, ()),
    # AFLW's split takes the train faces first and needs more
    "19": _benchmark_files("19", _aflw_place, _aflw_subsets, _write_aflw, ("test",)),
}
