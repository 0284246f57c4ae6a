"""WFLW in its native form: the 207-field annotation lines of `list_98pt_rect_attr_{train,test}.txt`.

The download unpacks to `WFLW_images/<event>/<name>.jpg` and
`WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_<split>.txt`; that folder holding both is
the dataset root. One line per face: 98 (x, y) pairs, the box x_min y_min x_max y_max, six 0/1 attribute flags
(pose, expression, illumination, make-up, occlusion, blur), then the image path relative to `WFLW_images/`.
Coordinates are already 0-based pixels (HRNet's csv copies them as they are), so nothing is shifted.
A flag set to 1 puts the face in that attribute's subset (names from `layouts.DATASET_SUBSETS`), in both
splits, so that writing the records back reproduces every flag.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from landmarkflow.data.formats.common import encode_image, image_size
from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.read_report import FormatReport
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.fileio import atomic_write_bytes, atomic_write_text
from landmarkflow.layouts import DATASET_SUBSETS, get_layout

log = logging.getLogger(__name__)

LAYOUT = "98"
IMAGE_DIR = "WFLW_images"
ANNOTATION_DIR = "WFLW_annotations/list_98pt_rect_attr_train_test"
SPLITS = ("train", "test")
ATTRIBUTES = DATASET_SUBSETS["wflw"]
NUM_POINTS = get_layout(LAYOUT).num_points
BOX_FIELDS = ("x_min", "y_min", "x_max", "y_max")
NUM_FIELDS = 2 * NUM_POINTS + len(BOX_FIELDS) + len(ATTRIBUTES) + 1  # 207: PFLD checks exactly this


def annotation_file(split: str) -> str:
    """Path of a split's annotation file relative to the dataset root."""
    return f"{ANNOTATION_DIR}/list_98pt_rect_attr_{split}.txt"


def field_name(index: int) -> str:
    """What field `index` (0-based) of a line holds, so errors can say it in the format's own terms."""
    if index < 2 * NUM_POINTS:
        return f"{'xy'[index % 2]}{index // 2}"
    index -= 2 * NUM_POINTS
    if index < len(BOX_FIELDS):
        return f"box {BOX_FIELDS[index]}"
    index -= len(BOX_FIELDS)
    return f"flag {ATTRIBUTES[index]}" if index < len(ATTRIBUTES) else "image path"


@dataclass(frozen=True)
class WflwFace:
    """One parsed annotation line, before its image is looked at."""

    landmarks: np.ndarray
    bbox: np.ndarray
    subsets: tuple[str, ...]
    image: str


def parse_line(path: Path, number: int, text: str) -> WflwFace:
    """Parse one 207-field line; errors name the file, the line and the field."""
    fields = text.split()
    if len(fields) != NUM_FIELDS:
        raise FormatError(
            path,
            f"expected {NUM_FIELDS} whitespace-separated fields ({2 * NUM_POINTS} coordinates, 4 box values, "
            f"{len(ATTRIBUTES)} attribute flags, image path), found {len(fields)}",
            number,
        )
    values = np.empty(NUM_FIELDS - 1, dtype=np.float64)
    for index, token in enumerate(fields[:-1]):
        try:
            values[index] = float(token)
        except ValueError:
            raise FormatError(
                path, f"field {index + 1} ({field_name(index)}) is {token!r}; expected a number", number
            ) from None
        if not math.isfinite(values[index]):
            raise FormatError(
                path,
                f"field {index + 1} ({field_name(index)}) is {token!r}; expected a finite number",
                number,
                "no_nan",
            )
    bbox = values[2 * NUM_POINTS : 2 * NUM_POINTS + 4]
    if bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
        raise FormatError(
            path,
            f"box {bbox.tolist()} has x_max <= x_min or y_max <= y_min; expected x_min < x_max and y_min < y_max",
            number,
            "boxes_inside_image",
        )
    flags = values[2 * NUM_POINTS + 4 :]
    for name, flag in zip(ATTRIBUTES, flags, strict=True):
        if flag not in (0.0, 1.0):
            raise FormatError(path, f"attribute flag {name} is {flag:g}; expected 0 or 1", number)
    image = fields[-1]
    pure = PurePosixPath(image)
    if pure.is_absolute() or ".." in pure.parts or "\\" in image:
        raise FormatError(
            path,
            f"image path {image!r} must be a relative path under {IMAGE_DIR}/ that stays inside it",
            number,
            "relative_path",
        )
    subsets = tuple(name for name, flag in zip(ATTRIBUTES, flags, strict=True) if flag == 1.0)
    return WflwFace(values[: 2 * NUM_POINTS].reshape(NUM_POINTS, 2), bbox.copy(), subsets, image)


def sample_id(image: str, face_index: int) -> str:
    """A face's id: its image path without suffix, and which face of that image (in file order) it is."""
    return f"{PurePosixPath(image).with_suffix('').as_posix()}#{face_index}"


@dataclass
class WflwReport(FormatReport):
    """What `read_wflw_with_report` found: the shared counts and problems, plus the files read and distinct images."""

    files: list[str] = field(default_factory=list)
    images: int = 0

    def source(self) -> str:
        """The images the faces lie in and the annotation files that list them."""
        return f"in {self.images} images under {self.root} from {', '.join(self.files)}"

    def details(self) -> list[str]:
        """The faces per attribute subset."""
        return [f"subsets {self.faces_per_subset}"]


def read_wflw(root: str | Path) -> list[FaceRecord]:
    """Read every face of an unpacked WFLW download (see `read_wflw_with_report`)."""
    records, report = read_wflw_with_report(root, strict=True)
    log.info("%s", report.summary())
    return records


def read_wflw_with_report(root: str | Path, strict: bool = True) -> tuple[list[FaceRecord], WflwReport]:
    """Read the train and test annotation files present under `root`, in file order, checking every image.

    A broken line raises its FormatError when `strict`; otherwise it is left out and kept in `report.problems`.
    """
    root = Path(root)
    present = [split for split in SPLITS if (root / annotation_file(split)).is_file()]
    if not present:
        found = sorted(p.name + "/" for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        expected = " and ".join(annotation_file(split) for split in SPLITS)
        raise FormatError(root, f"no WFLW annotation file here; expected {expected} (found {found or 'no folders'})")
    report = WflwReport(root=root)
    records: list[FaceRecord] = []
    sizes: dict[str, tuple[int, int]] = {}
    for split in present:
        path = root / annotation_file(split)
        report.files.append(annotation_file(split))
        faces_of_image: dict[str, int] = {}
        try:
            lines = _annotation_lines(path)
        except FormatError as problem:
            report.collect(problem, strict)
            continue
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                face = parse_line(path, number, text)
                size = _image_size(root, path, number, face.image, sizes)
            except FormatError as problem:
                report.collect(problem, strict)
                continue
            face_index = faces_of_image.get(face.image, 0)
            faces_of_image[face.image] = face_index + 1
            records.append(_record(face, split, face_index, size))
            report.count(split, face.subsets)
    report.images = len(sizes)
    return records, report


def _annotation_lines(path: Path) -> list[str]:
    """The lines of an annotation file; one that is not text, or holds no line, is an error of its own."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise FormatError(
            path, f"not a text annotation file ({exc.reason}); expected {NUM_FIELDS}-field lines"
        ) from None
    if not any(line.strip() for line in lines):
        raise FormatError(path, f"holds no annotation line; expected one {NUM_FIELDS}-field line per face")
    return lines


def _image_size(root: Path, path: Path, number: int, image: str, sizes: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """(width, height) of a line's image, read once per image; a missing or unreadable one names the line."""
    if image not in sizes:
        image_file = root / IMAGE_DIR / image
        if not image_file.is_file():
            raise FormatError(path, f"image {IMAGE_DIR}/{image} does not exist under {root}", number, "image_exists")
        try:
            sizes[image] = image_size(image_file)
        except FormatError as problem:
            raise FormatError(path, f"image {IMAGE_DIR}/{image}: {problem.detail}", number, problem.check) from None
    return sizes[image]


def _record(face: WflwFace, split: str, face_index: int, size: tuple[int, int]) -> FaceRecord:
    return FaceRecord(
        sample_id=sample_id(face.image, face_index),
        dataset="wflw",
        split=split,
        subsets=face.subsets,
        image_path=f"{IMAGE_DIR}/{face.image}",
        width=size[0],
        height=size[1],
        bbox=face.bbox,
        landmarks=face.landmarks,
        visible=np.ones(NUM_POINTS, dtype=bool),
        layout=LAYOUT,
    )


# ------------------------------------------------------------------------------------------------ writing


def format_number(value: float) -> str:
    """Shortest text that parses back to the same float; integers without a point, as the download writes boxes."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def format_line(record: FaceRecord) -> str:
    """The 207-field annotation line of one record (no newline)."""
    check_record(record)
    numbers = [*record.landmarks.reshape(-1).tolist(), *record.bbox.tolist()]
    flags = ["1" if name in record.subsets else "0" for name in ATTRIBUTES]
    return " ".join([*(format_number(v) for v in numbers), *flags, record.image_path[len(IMAGE_DIR) + 1 :]])


def check_record(record: FaceRecord) -> None:
    """Refuse a record that the WFLW files cannot hold or that would read back differently."""
    where = Path(record.image_path)
    image = PurePosixPath(record.image_path)
    if record.layout != LAYOUT:
        raise FormatError(where, f"sample {record.sample_id} has layout {record.layout}; WFLW holds layout {LAYOUT}")
    if record.split not in SPLITS:
        raise FormatError(where, f"sample {record.sample_id} has split {record.split!r}; WFLW has {list(SPLITS)}")
    if image.parts[0] != IMAGE_DIR or len(image.parts) < 2 or any(c.isspace() for c in record.image_path):
        raise FormatError(
            where, f"sample {record.sample_id}: the image must lie under {IMAGE_DIR}/ with no whitespace in its path"
        )
    unknown = sorted(set(record.subsets) - set(ATTRIBUTES))
    if unknown:
        raise FormatError(where, f"sample {record.sample_id} has subsets {unknown}; WFLW's are {list(ATTRIBUTES)}")
    if not (np.isfinite(record.landmarks).all() and np.isfinite(record.bbox).all()):
        raise FormatError(where, f"sample {record.sample_id}: landmarks and box must be finite", check="no_nan")


def write_wflw(records: Sequence[FaceRecord], root: str | Path, images: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write records as the WFLW download lays them out, so that `read_wflw(root)` gives them back.

    Images come from `images[sample_id]` (uint8, as OpenCV holds them) where given, else must already be on
    disk. Each split's file keeps the records' order; ids must be what reading back assigns (image path without
    suffix, '#', the face's index among that image's lines). Every file is written atomically, images first; a
    split without records gets no annotation file (an earlier one is removed).
    """
    root = Path(root)
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    faces_of_image: dict[str, int] = {}
    for record in records:
        line = format_line(record)
        image = record.image_path[len(IMAGE_DIR) + 1 :]
        expected = sample_id(image, faces_of_image.get(image, 0))
        faces_of_image[image] = faces_of_image.get(image, 0) + 1
        if record.sample_id != expected:
            raise FormatError(
                Path(record.image_path),
                f"sample {record.sample_id} would read back as {expected}; WFLW names a "
                "face by its image path without suffix and its index among that image's lines",
            )
        lines[record.split].append(line)
    for record in records:
        _check_image(root, record, images.get(record.sample_id) if images else None)
    written: set[str] = set()
    for record in records:
        image = images.get(record.sample_id) if images else None
        if image is not None and record.image_path not in written:
            image_file = root / record.image_path
            atomic_write_bytes(image_file, encode_image(image_file, image))
            written.add(record.image_path)
    for split, split_lines in lines.items():
        path = root / annotation_file(split)
        if split_lines:
            atomic_write_text(path, "".join(f"{line}\n" for line in split_lines))
        else:  # an empty file is a broken download to the reader; no file is a split the dataset lacks
            path.unlink(missing_ok=True)
    return root


def _check_image(root: Path, record: FaceRecord, image: np.ndarray | None) -> None:
    """Refuse a face whose image is neither given (with the record's size) nor on disk, before writing anything."""
    image_file = root / record.image_path
    if image is None:
        if not image_file.is_file():
            raise FormatError(
                image_file, f"sample {record.sample_id}: no image given and none on disk", check="image_exists"
            )
    elif image.shape[:2] != (record.height, record.width) or image.dtype != np.uint8:
        raise FormatError(
            image_file,
            f"sample {record.sample_id}: image is {image.dtype} {image.shape}, expected uint8 "
            f"({record.height}, {record.width}[, 3])",
        )
