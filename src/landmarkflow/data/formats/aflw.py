"""AFLW-19 in its protocol form: SAN's `AFLWinfo_release.mat` beside the AFLW images.

Variables (docs/models.md §1.2), one row per face: `nameList` (N×1 cell of image paths under the images folder),
`data` (N×38: 19 x then 19 y), `mask_new` (N×19, 1 = visible), `bbox` (N×4 as [x1 x2 y1 y2]) and `ra`
(a permutation of 1..N). The standard split: train = the faces at `ra[:20000]`, test (AFLW-Full) = the other 4386.
AFLW-Frontal (1314 in the literature) = test faces whose 19 points are all visible and inside the box; it is
recorded as the subset "frontal" (name from `layouts.DATASET_SUBSETS`).

The dataset root holds `AFLWinfo_release.mat` and `aflw/data/flickr/`, as the AFLW image archives unpack, and
`nameList` paths are taken relative to that folder (a name without an image suffix gets `.jpg`, as SAN's code
does). Coordinates are MATLAB's 1-based pixels, so the reader subtracts 1 and the writer adds it back. A face is
`<row:05d>`, its 0-based row; errors name the .mat file, the variable and that row, e.g. `data[17]`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from landmarkflow.data.formats.common import IMAGE_SUFFIXES, encode_image, image_size
from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.matlab import MatValue, check_row, numeric, read_mat, write_mat
from landmarkflow.data.formats.read_report import FormatReport
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.fileio import atomic_write_bytes
from landmarkflow.layouts import DATASET_SUBSETS, get_layout

log = logging.getLogger(__name__)

LAYOUT = "19"
NUM_POINTS = get_layout(LAYOUT).num_points
MAT_FILE = "AFLWinfo_release.mat"
IMAGE_DIR = "aflw/data/flickr"
VARIABLES = ("nameList", "data", "mask_new", "bbox", "ra")
TRAIN_FACES = 20000  # the standard split; the file holds 24386 faces, so 4386 test
# Not in the release file: a smaller file (synthetic faces) may store how many of `ra` are train; SAN ignores it.
NUM_TRAIN = "num_train"
(FRONTAL,) = DATASET_SUBSETS["aflw"]


@dataclass(frozen=True)
class AflwArrays:
    """The protocol file's variables, checked against each other; `train` marks the rows of the train split."""

    names: list[MatValue]
    points: np.ndarray
    mask: np.ndarray
    boxes: np.ndarray
    train: np.ndarray


def read_aflw_file(path: str | Path, train_faces: int | None = None) -> AflwArrays:
    """Load `AFLWinfo_release.mat`, check shapes, row counts and that `ra` is a permutation, and split it:
    the first `train_faces` of `ra` train (default: the file's `num_train` where it has one, else 20000)."""
    path = Path(path)
    values = read_mat(path, VARIABLES, optional=(NUM_TRAIN,))
    if train_faces is None:
        train_faces = _stored_train_faces(path, values.get(NUM_TRAIN))
    names = values["nameList"]
    if not isinstance(names, list):
        raise FormatError(path, "nameList is not a cell array; expected an N×1 cell array of image paths")
    points = numeric(path, "data", values["data"], 2 * NUM_POINTS)
    mask = numeric(path, "mask_new", values["mask_new"], NUM_POINTS)
    boxes = numeric(path, "bbox", values["bbox"], 4)
    ra = values["ra"]
    if not isinstance(ra, np.ndarray) or ra.dtype.kind not in "biuf":
        raise FormatError(path, "ra is not numeric; expected a permutation of 1..N")
    ra = ra.reshape(-1)
    counts = {"nameList": len(names), "data": len(points), "mask_new": len(mask), "bbox": len(boxes), "ra": ra.size}
    if len(set(counts.values())) != 1:
        raise FormatError(path, f"row counts differ ({counts}); expected one row (and one ra entry) per face")
    if not np.array_equal(np.sort(ra), np.arange(1, ra.size + 1)):
        raise FormatError(path, f"ra is not a permutation of 1..{ra.size}; expected MATLAB's 1-based face indices")
    if ra.size <= train_faces:
        raise FormatError(
            path, f"holds {ra.size} faces; the split takes the first {train_faces} of ra for training and needs more"
        )
    train = np.zeros(ra.size, dtype=bool)
    train[ra[:train_faces].astype(np.int64) - 1] = True
    return AflwArrays(names, points, mask, boxes, train)


def _stored_train_faces(path: Path, value: MatValue | None) -> int:
    if value is None:
        return TRAIN_FACES
    if not isinstance(value, np.ndarray) or value.size != 1 or value.dtype.kind not in "biuf":
        raise FormatError(path, f"{NUM_TRAIN} is not one number; expected the count of train faces")
    return int(value.reshape(-1)[0])


def is_frontal(landmarks: np.ndarray, visible: np.ndarray, bbox: np.ndarray) -> bool:
    """AFLW-Frontal's rule: every point visible and inside the box (edges included)."""
    inside = (landmarks >= bbox[:2]) & (landmarks <= bbox[2:])
    return bool(visible.all() and inside.all())


def image_file_name(name: str) -> str:
    """A `nameList` entry as a path under the images folder: `.jpg` where it names no image suffix."""
    return name if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES else f"{name}.jpg"


def aflw_face(path: Path, root: Path, arrays: AflwArrays, index: int, sizes: dict[str, tuple[int, int]]) -> FaceRecord:
    """Row `index` of the protocol file as a record (its image looked at once per image)."""
    name = arrays.names[index]
    if not isinstance(name, str) or not name:
        raise FormatError(path, f"nameList[{index}] is {type(name).__name__}; expected an image path")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise FormatError(
            path,
            f"nameList[{index}] is {name!r}; expected a relative path that stays inside {IMAGE_DIR}/",
            check="relative_path",
        )
    check_row(path, f"data[{index}]", arrays.points[index])
    check_row(path, f"bbox[{index}]", arrays.boxes[index])
    mask = arrays.mask[index]
    bad = np.flatnonzero((mask != 0) & (mask != 1))
    if bad.size:
        raise FormatError(path, f"mask_new[{index}]: point {bad[0]} is {mask[bad[0]]:g}; expected 0 or 1")
    x1, x2, y1, y2 = (arrays.boxes[index] - 1.0).tolist()
    if x2 <= x1 or y2 <= y1:
        raise FormatError(
            path,
            f"bbox[{index}] is {arrays.boxes[index].tolist()}; expected [x1 x2 y1 y2] with x1 < x2 and y1 < y2",
            check="boxes_inside_image",
        )
    relative = f"{IMAGE_DIR}/{image_file_name(name)}"
    width, height = _image_size(path, root, index, relative, sizes)
    landmarks = arrays.points[index].reshape(2, NUM_POINTS).T - 1.0
    bbox = np.array([x1, y1, x2, y2])
    visible = mask == 1
    test = not arrays.train[index]
    return FaceRecord(
        sample_id=sample_id(index),
        dataset="aflw",
        split="train" if arrays.train[index] else "test",
        subsets=(FRONTAL,) if test and is_frontal(landmarks, visible, bbox) else (),
        image_path=relative,
        width=width,
        height=height,
        bbox=bbox,
        landmarks=landmarks,
        visible=visible,
        layout=LAYOUT,
    )


def _image_size(
    path: Path, root: Path, index: int, relative: str, sizes: dict[str, tuple[int, int]]
) -> tuple[int, int]:
    if relative not in sizes:
        if not (root / relative).is_file():
            raise FormatError(
                path, f"nameList[{index}]: image {relative} does not exist under {root}", check="image_exists"
            )
        try:
            sizes[relative] = image_size(root / relative)
        except FormatError as problem:
            raise FormatError(
                path, f"nameList[{index}]: image {relative}: {problem.detail}", check=problem.check
            ) from None
    return sizes[relative]


def sample_id(index: int) -> str:
    """A face's id: its 0-based row in the protocol file."""
    return f"{index:05d}"


@dataclass
class AflwReport(FormatReport):
    """What `read_aflw_with_report` found: the shared counts and problems, plus how many distinct images."""

    images: int = 0

    def source(self) -> str:
        """The images the faces lie in, under the dataset root."""
        return f"in {self.images} images under {self.root}"

    def details(self) -> list[str]:
        """The faces per subset (AFLW-Frontal)."""
        return [f"subsets {self.faces_per_subset}"]


def read_aflw(root: str | Path, train_faces: int | None = None) -> list[FaceRecord]:
    """Read AFLW-19 under `root` (see `read_aflw_with_report`)."""
    records, report = read_aflw_with_report(root, strict=True, train_faces=train_faces)
    log.info("%s", report.summary())
    return records


def read_aflw_with_report(
    root: str | Path, strict: bool = True, train_faces: int | None = None
) -> tuple[list[FaceRecord], AflwReport]:
    """Read every face of `AFLWinfo_release.mat` in row order, split by `ra`, checking every image.

    A broken face (or a broken protocol file) raises its FormatError when `strict`; otherwise it is left out and
    kept in `report.problems`.
    """
    root = Path(root)
    path = root / MAT_FILE
    if not path.is_file() or not (root / IMAGE_DIR).is_dir():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise FormatError(root, f"expected {MAT_FILE} and the images under {IMAGE_DIR}/ (found {found or 'nothing'})")
    report = AflwReport(root=root)
    records: list[FaceRecord] = []
    sizes: dict[str, tuple[int, int]] = {}
    try:
        arrays = read_aflw_file(path, train_faces)
    except FormatError as problem:
        report.collect(problem, strict)
        return records, report
    for index in range(len(arrays.names)):
        try:
            record = aflw_face(path, root, arrays, index, sizes)
        except FormatError as problem:
            report.collect(problem, strict)
            continue
        records.append(record)
        report.count(record.split, record.subsets)
    report.images = len(sizes)
    return records, report


# ------------------------------------------------------------------------------------------------ writing


def check_record(record: FaceRecord, index: int) -> None:
    """Refuse a record that the protocol file cannot hold or that would read back differently."""
    where = Path(record.image_path)
    if record.layout != LAYOUT or record.sample_id != sample_id(index):
        raise FormatError(
            where,
            f"sample {record.sample_id} (layout {record.layout}) is face {index}, so it reads back as "
            f"{sample_id(index)}; expected layout {LAYOUT} records in row order",
        )
    if (
        not record.image_path.startswith(f"{IMAGE_DIR}/")
        or PurePosixPath(record.image_path).suffix.lower() not in IMAGE_SUFFIXES
    ):
        raise FormatError(
            where,
            f"sample {record.sample_id}: the image must lie under {IMAGE_DIR}/ and end in one of {IMAGE_SUFFIXES}",
        )
    if not (np.isfinite(record.landmarks).all() and np.isfinite(record.bbox).all()):
        raise FormatError(where, f"sample {record.sample_id}: landmarks and box must be finite", check="no_nan")
    frontal = record.split == "test" and is_frontal(record.landmarks, record.visible, record.bbox)
    if record.split not in ("train", "test") or sorted(record.subsets) != ([FRONTAL] if frontal else []):
        raise FormatError(
            where,
            f"sample {record.sample_id} has split {record.split!r} subsets {list(record.subsets)}; AFLW has train "
            f"and test, and {FRONTAL!r} is derived: test faces with every point visible and inside the box",
        )


def write_aflw(
    records: Sequence[FaceRecord],
    root: str | Path,
    images: Mapping[str, np.ndarray] | None = None,
    train_faces: int = TRAIN_FACES,
    store_split: bool = False,
) -> Path:
    """Write records as `AFLWinfo_release.mat` (MATLAB v5, as SAN reads it) and their images, so that
    `read_aflw(root, train_faces)` gives them back: `ra` lists the train rows first, then the test rows.
    `store_split` also writes `num_train`, so that plain `read_aflw(root)` finds this split in a small file.

    Images come from `images[sample_id]` (uint8, as OpenCV holds them) where given, else must be on disk.
    """
    root = Path(root)
    for index, record in enumerate(records):
        check_record(record, index)
        image = images.get(record.sample_id) if images else None
        if image is None and not (root / record.image_path).is_file():
            raise FormatError(
                root / record.image_path,
                f"sample {record.sample_id}: no image given and none on disk",
                check="image_exists",
            )
        if image is not None and (image.shape[:2] != (record.height, record.width) or image.dtype != np.uint8):
            raise FormatError(
                root / record.image_path,
                f"sample {record.sample_id}: image is {image.dtype} "
                f"{image.shape}, expected uint8 ({record.height}, {record.width}[, 3])",
            )
    train = [i for i, r in enumerate(records) if r.split == "train"]
    if len(train) != train_faces:
        raise FormatError(root / MAT_FILE, f"{len(train)} train records; the split takes exactly {train_faces}")
    written: set[str] = set()
    for record in records:
        image = images.get(record.sample_id) if images else None
        if image is not None and record.image_path not in written:
            atomic_write_bytes(root / record.image_path, encode_image(root / record.image_path, image))
            written.add(record.image_path)
    test = [i for i, r in enumerate(records) if r.split == "test"]
    variables: dict[str, MatValue] = {
        "nameList": [r.image_path[len(IMAGE_DIR) + 1 :] for r in records],
        "data": np.stack([np.concatenate([r.landmarks[:, 0], r.landmarks[:, 1]]) + 1.0 for r in records]),
        "mask_new": np.stack([r.visible.astype(np.float64) for r in records]),
        "bbox": np.stack([r.bbox[[0, 2, 1, 3]] + 1.0 for r in records]),
        "ra": np.array([train + test], dtype=np.float64) + 1.0,
    }
    if store_split:
        variables[NUM_TRAIN] = np.array([[float(train_faces)]])
    write_mat(root / MAT_FILE, variables)
    return root
