"""The 68-point layout's files: the 300W folder layout (JPEG, .pts, box .mat files) plus `synthetic_meta.csv`
with each image's parameters and per-point visibility. Each face's image and .pts are written as it is
rendered; the box files and the meta file come last.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landmarkflow.data.formats.synthetic import write_meta
from landmarkflow.data.formats.w300 import write_box_files, write_sample
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.synthetic.layout_files import LayoutFiles, Placement, Written
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS
from landmarkflow.data.synthetic.params import FaceSpec
from landmarkflow.data.synthetic.plan import STREAMS, SynthItem
from landmarkflow.data.synthetic.render import RenderedFace
from landmarkflow.geometry import landmark_box


def detector_box(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A face-detector-like box: the brow-to-chin square, jittered in size and position (0-based x1 y1 x2 y2)."""
    top = landmarks[17:27, 1].min()
    bottom = landmarks[:17, 1].max()
    left, right = landmarks[:, 0].min(), landmarks[:, 0].max()
    side = (bottom - top) * rng.uniform(0.95, 1.12)
    centre = np.array([(left + right) / 2, (top + bottom) / 2]) + side * rng.uniform([-0.05, -0.03], [0.05, 0.07])
    return np.concatenate([centre - side / 2, centre + side / 2])


def item_detector_box(seed: int, item: SynthItem, landmarks: np.ndarray) -> np.ndarray:
    """The detector box of one item's face, from the item's own RNG stream (so it is prefix-stable too)."""
    return detector_box(landmarks, np.random.default_rng([seed, STREAMS[item.stream], item.index, 1]))


def meta_row(item: SynthItem, spec: FaceSpec, visible: np.ndarray) -> dict[str, object]:
    """One face's row of `synthetic_meta.csv`: the parameters it was rendered from and its visibility."""
    hidden = int((~visible).sum())
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
        "visible": "".join("1" if v else "0" for v in visible.tolist()),
    }


def _check(root: Path, items: Sequence[SynthItem]) -> None:
    existing = sum(1 for _ in root.rglob("*.pts")) if root.is_dir() else 0
    if existing:
        raise FileExistsError(f"{root} already holds {existing} .pts files; remove it or render into an empty folder")


def _place(item: SynthItem, row: int, row_in_split: int) -> Placement:
    return Placement(item.sample_id, f"{item.sample_id}.jpg")


def _record(item: SynthItem, place: Placement, spec: FaceSpec, face: RenderedFace) -> FaceRecord:
    height, width = face.image.shape[:2]
    return FaceRecord(
        sample_id=place.sample_id,
        dataset=LAYOUT_DATASETS["68"],
        split=item.folder.split,
        subsets=item.folder.subsets,
        image_path=place.image_path,
        width=width,
        height=height,
        bbox=landmark_box(face.landmarks),
        landmarks=face.landmarks,
        visible=face.visible,
        layout="68",
    )


def _write_face(root: Path, record: FaceRecord, face: RenderedFace) -> None:
    write_sample(root, record, face.image)


def _finish(root: Path, seed: int, written: Sequence[Written]) -> None:
    records = [w.record for w in written]
    boxes = {w.record.sample_id: item_detector_box(seed, w.item, w.record.landmarks) for w in written}
    write_box_files(root, records, boxes)
    write_meta(root, [meta_row(w.item, w.spec, w.record.visible) for w in written])


# Refuses a folder that already holds .pts files, so that runs never mix.
W300_FILES = LayoutFiles(check=_check, place=_place, record=_record, write_face=_write_face, finish=_finish)
