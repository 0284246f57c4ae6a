"""COFW in its native form: `COFW_{train,test}_color.mat` (MATLAB v5 or v7.3), and the COFW-68 re-annotation.

Variables (docs/models.md §1.2): `IsTr`/`IsT`, N×1 cell arrays of uint8 RGB (H×W×3) or grey (H×W) images;
`phisTr`/`phisT`, N×87: 29 x, 29 y, 29 occlusion flags (1 = occluded); `bboxesTr`/`bboxesT`, N×4 [x y w h].
COFW-68 (Ghiasi & Fowlkes) keeps its 507 test faces' annotations beside the test file:
`COFW68_Data/test_annotations/<i>_points.mat` (i = 1..N, `Points` 68×2, `Occ` 68×1, 1 = occluded) and
`COFW68_Data/cofw68_test_bboxes.mat` (`bboxes`, N×4 [x y w h], as its MATLAB viewer draws them).

The dataset root holds the two colour files (and `COFW68_Data/`). Coordinates are MATLAB's 1-based pixels, as
in 300W's .pts, so readers subtract 1 from points and box corners and writers add it back.
The images live inside the .mat files, but the manifest points at files: reading exports face i of a split to
`<root>/images/<split>/<i:04d>.png` (i 0-based, the row of the .mat; RGB kept, grey stays grey), writing a file
only when it is missing or its bytes differ. Its sample id is `<split>/<i:04d>`; COFW-68 faces share the ids and
image files of the test faces. Errors name the .mat file, the variable and its row and column, 0-based:
`phisT[12]: column 3`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.matlab import MAT_VERSIONS, MatValue, check_row, numeric, read_mat, write_mat
from landmarkflow.data.formats.read_report import FormatReport
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.fileio import atomic_write_bytes
from landmarkflow.layouts import get_layout

log = logging.getLogger(__name__)

LAYOUT = "29"
LAYOUT_68 = "68"
NUM_POINTS = get_layout(LAYOUT).num_points
NUM_POINTS_68 = get_layout(LAYOUT_68).num_points
IMAGE_DIR = "images"
COFW68_DIR = "COFW68_Data"
COFW68_ANNOTATIONS = f"{COFW68_DIR}/test_annotations"
COFW68_BOXES = f"{COFW68_DIR}/cofw68_test_bboxes.mat"


@dataclass(frozen=True)
class CofwFile:
    """One COFW colour file: its split and the names of its three variables."""

    split: str
    name: str
    images: str
    phis: str
    boxes: str


FILES: tuple[CofwFile, ...] = (
    CofwFile("train", "COFW_train_color.mat", "IsTr", "phisTr", "bboxesTr"),
    CofwFile("test", "COFW_test_color.mat", "IsT", "phisT", "bboxesT"),
)
FILES_BY_SPLIT: dict[str, CofwFile] = {f.split: f for f in FILES}


# ------------------------------------------------------------------------------------------------ faces


def occlusion(path: Path, name: str, flags: np.ndarray) -> np.ndarray:
    """Visibility from MATLAB occlusion flags (1 = occluded)."""
    bad = np.flatnonzero((flags != 0) & (flags != 1))
    if bad.size:
        raise FormatError(path, f"{name}: occlusion flag of point {bad[0]} is {flags[bad[0]]:g}; expected 0 or 1")
    return flags == 0


def box_from_xywh(path: Path, name: str, box: np.ndarray) -> np.ndarray:
    """1-based [x y w h] -> 0-based x1 y1 x2 y2."""
    check_row(path, name, box)
    if box[2] <= 0 or box[3] <= 0:
        raise FormatError(
            path,
            f"{name}: box {box.tolist()} has width or height <= 0; expected [x y w h] with w, h > 0",
            check="boxes_inside_image",
        )
    x1, y1 = box[0] - 1.0, box[1] - 1.0
    return np.array([x1, y1, x1 + box[2], y1 + box[3]])


def box_to_xywh(bbox: np.ndarray) -> np.ndarray:
    """0-based x1 y1 x2 y2 -> 1-based [x y w h]."""
    x1, y1, x2, y2 = np.asarray(bbox, dtype=np.float64).tolist()
    return np.array([x1 + 1.0, y1 + 1.0, x2 - x1, y2 - y1])


def check_image(path: Path, name: str, image: MatValue) -> np.ndarray:
    """A stored image must be uint8 H×W or H×W×3."""
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
        and image.size
    ):
        kind = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise FormatError(path, f"{name} is {kind}; expected a uint8 image H×W or H×W×3", check="image_opens")
    return image


def sample_id(split: str, index: int) -> str:
    """A face's id: its split and its 0-based row in the .mat file."""
    return f"{split}/{index:04d}"


def image_path(split: str, index: int) -> str:
    """Where reading exports a face's image, relative to the root."""
    return f"{IMAGE_DIR}/{sample_id(split, index)}.png"


def export_image(root: Path, relative: str, image: np.ndarray) -> bool:
    """Write an RGB (or grey) image as PNG unless the same bytes are there; True when it wrote."""
    pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", pixels)
    target = root / relative
    if not ok:
        raise FormatError(target, "OpenCV cannot encode this image as PNG")
    data = buffer.tobytes()
    if target.is_file() and target.read_bytes() == data:
        return False
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:
        raise FormatError(
            target,
            f"cannot write the image ({exc.strerror or exc}): COFW's images live inside its .mat files, and "
            f"reading exports them beside them, into {IMAGE_DIR}/, for the manifest to point at; give a copy of the "
            "folder that can be written to",
        ) from exc
    return True


@dataclass
class CofwReport(FormatReport):
    """What a COFW reader found: the shared counts and problems, plus the files read and the images exported."""

    files: list[str] = field(default_factory=list)
    images_written: int = 0
    images_kept: int = 0

    def source(self) -> str:
        """The .mat files (and COFW-68 folder) the faces came from."""
        return f"under {self.root} from {', '.join(self.files)}"

    def details(self) -> list[str]:
        """How many images reading wrote out, and how many were already on disk with the same bytes."""
        return [f"images exported {self.images_written}, unchanged {self.images_kept}"]

    def add(self, root: Path, record: FaceRecord, image: np.ndarray) -> None:
        """Export a face's image and count the face."""
        if export_image(root, record.image_path, image):
            self.images_written += 1
        else:
            self.images_kept += 1
        self.count(record.split, record.subsets)


# ------------------------------------------------------------------------------------------------ COFW 29


@dataclass(frozen=True)
class CofwArrays:
    """One colour file's variables, checked against each other."""

    images: list[MatValue]
    phis: np.ndarray
    boxes: np.ndarray


def read_cofw_file(path: str | Path, spec: CofwFile) -> CofwArrays:
    """Load one colour file and check its variables' types and row counts."""
    path = Path(path)
    values = read_mat(path, (spec.images, spec.phis, spec.boxes))
    images = values[spec.images]
    if not isinstance(images, list):
        raise FormatError(path, f"{spec.images} is not a cell array; expected an N×1 cell array of images")
    phis = numeric(path, spec.phis, values[spec.phis], 3 * NUM_POINTS)
    boxes = numeric(path, spec.boxes, values[spec.boxes], 4)
    if not len(images) == len(phis) == len(boxes):
        raise FormatError(
            path,
            f"{spec.images} has {len(images)} images, {spec.phis} {len(phis)} rows and {spec.boxes} {len(boxes)} "
            "rows; expected one row per image",
        )
    return CofwArrays(images, phis, boxes)


def cofw_face(path: Path, spec: CofwFile, arrays: CofwArrays, index: int) -> tuple[FaceRecord, np.ndarray]:
    """Row `index` of a colour file as a record and its RGB image."""
    image = check_image(path, f"{spec.images}[{index}]", arrays.images[index])
    phis = arrays.phis[index]
    check_row(path, f"{spec.phis}[{index}]", phis)
    visible = occlusion(path, f"{spec.phis}[{index}]", phis[2 * NUM_POINTS :])
    record = FaceRecord(
        sample_id=sample_id(spec.split, index),
        dataset="cofw",
        split=spec.split,
        image_path=image_path(spec.split, index),
        width=image.shape[1],
        height=image.shape[0],
        bbox=box_from_xywh(path, f"{spec.boxes}[{index}]", arrays.boxes[index]),
        landmarks=np.stack([phis[:NUM_POINTS], phis[NUM_POINTS : 2 * NUM_POINTS]], axis=1) - 1.0,
        visible=visible,
        layout=LAYOUT,
    )
    return record, image


def read_cofw(root: str | Path) -> list[FaceRecord]:
    """Read the COFW colour files under `root` (see `read_cofw_with_report`)."""
    records, report = read_cofw_with_report(root, strict=True)
    log.info("%s", report.summary())
    return records


def read_cofw_with_report(root: str | Path, strict: bool = True) -> tuple[list[FaceRecord], CofwReport]:
    """Read whichever colour files are under `root`, train first, exporting their images.

    A broken face (or a whole broken file) raises its FormatError when `strict`; otherwise it is left out and
    kept in `report.problems`.
    """
    root = Path(root)
    present = [spec for spec in FILES if (root / spec.name).is_file()]
    if not present:
        raise FormatError(root, f"no COFW file here; expected {' and/or '.join(f.name for f in FILES)}{_found(root)}")
    report = CofwReport(root=root)
    records: list[FaceRecord] = []
    for spec in present:
        path = root / spec.name
        report.files.append(spec.name)
        try:
            arrays = read_cofw_file(path, spec)
        except FormatError as problem:
            report.collect(problem, strict)
            continue
        for index in range(len(arrays.phis)):
            try:
                record, image = cofw_face(path, spec, arrays, index)
            except FormatError as problem:
                report.collect(problem, strict)
                continue
            report.add(root, record, image)
            records.append(record)
    return records, report


def _found(root: Path) -> str:
    names = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    return f" (found {names or 'nothing'})"


def stored_image(root: Path, record: FaceRecord, images: Mapping[str, np.ndarray] | None) -> np.ndarray:
    """A record's image as the .mat stores it (RGB or grey), from `images` (as OpenCV holds them) or from disk."""
    image = images.get(record.sample_id) if images else None
    if image is None:
        image = cv2.imread(str(root / record.image_path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise FormatError(
                root / record.image_path,
                f"sample {record.sample_id}: no image given and none readable on disk",
                check="image_exists",
            )
    colour = image.ndim == 3 and image.shape[2] == 3
    if image.dtype != np.uint8 or image.shape[:2] != (record.height, record.width) or not (image.ndim == 2 or colour):
        raise FormatError(
            root / record.image_path,
            f"sample {record.sample_id}: image is {image.dtype} {image.shape}, expected uint8 "
            f"({record.height}, {record.width}[, 3])",
        )
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def check_order(records: Sequence[FaceRecord], split: str, layout: str) -> None:
    """Refuse records that would not read back as themselves: row i of a split must be `<split>/<i:04d>`."""
    for index, record in enumerate(records):
        where = Path(record.image_path)
        if record.layout != layout or record.split != split:
            raise FormatError(
                where,
                f"sample {record.sample_id} has layout {record.layout} split {record.split!r}; expected layout "
                f"{layout} split {split!r}",
            )
        if record.sample_id != sample_id(split, index) or record.image_path != image_path(split, index):
            raise FormatError(
                where,
                f"sample {record.sample_id} ({record.image_path}) is face {index} of split {split!r}, so it reads "
                f"back as {sample_id(split, index)} ({image_path(split, index)}); give the records in row order",
            )
        if not (np.isfinite(record.landmarks).all() and np.isfinite(record.bbox).all()):
            raise FormatError(where, f"sample {record.sample_id}: landmarks and box must be finite", check="no_nan")


def write_cofw(
    records: Sequence[FaceRecord],
    root: str | Path,
    images: Mapping[str, np.ndarray] | None = None,
    version: str = "7.3",
) -> Path:
    """Write records as the COFW colour files (one per split present), so that `read_cofw(root)` gives them back.

    Images come from `images[sample_id]` (uint8 as OpenCV holds them, BGR or grey) or from their files under root.
    v7.3 is what the public colour files are; "5" writes the scipy-readable form.
    """
    root = Path(root)
    if version not in MAT_VERSIONS:
        raise ValueError(f"MATLAB file version {version!r}: expected one of {MAT_VERSIONS}")
    by_split: dict[str, list[FaceRecord]] = {}
    for record in records:
        if record.split not in FILES_BY_SPLIT:
            raise FormatError(
                Path(record.image_path),
                f"sample {record.sample_id} has split {record.split!r}; COFW has {list(FILES_BY_SPLIT)}",
            )
        by_split.setdefault(record.split, []).append(record)
    variables: dict[str, dict[str, MatValue]] = {}
    for split, split_records in by_split.items():
        check_order(split_records, split, LAYOUT)
        spec = FILES_BY_SPLIT[split]
        variables[split] = {
            spec.images: [stored_image(root, r, images) for r in split_records],
            spec.phis: np.stack(
                [np.concatenate([r.landmarks[:, 0] + 1, r.landmarks[:, 1] + 1, ~r.visible]) for r in split_records]
            ),
            spec.boxes: np.stack([box_to_xywh(r.bbox) for r in split_records]),
        }
    for split, split_variables in variables.items():
        write_mat(root / FILES_BY_SPLIT[split].name, split_variables, version)
    return root


# ------------------------------------------------------------------------------------------------ COFW-68


def annotation_file(index: int) -> str:
    """COFW-68's annotation file of test face `index` (0-based; the files count from 1)."""
    return f"{COFW68_ANNOTATIONS}/{index + 1}_points.mat"


def cofw68_face(root: Path, index: int, box: np.ndarray, image: MatValue, images_path: Path) -> FaceRecord:
    """Test face `index` with its 68-point annotation file."""
    path = root / annotation_file(index)
    values = read_mat(path, ("Points", "Occ"))
    points = numeric(path, "Points", values["Points"], 2)
    if points.shape[0] != NUM_POINTS_68:
        raise FormatError(path, f"Points has shape {points.shape}; expected {NUM_POINTS_68}×2", check="point_count")
    flags = values["Occ"]
    if not isinstance(flags, np.ndarray) or flags.size != NUM_POINTS_68 or flags.dtype.kind not in "biuf":
        raise FormatError(path, f"Occ is not {NUM_POINTS_68} numbers; expected {NUM_POINTS_68}×1 occlusion flags")
    check_row(path, "Points", points.reshape(-1))
    checked = check_image(images_path, f"IsT[{index}]", image)
    return FaceRecord(
        sample_id=sample_id("test", index),
        dataset="cofw68",
        split="test",
        image_path=image_path("test", index),
        width=checked.shape[1],
        height=checked.shape[0],
        bbox=box_from_xywh(root / COFW68_BOXES, f"bboxes[{index}]", box),
        landmarks=points - 1.0,
        visible=occlusion(path, "Occ", flags.astype(np.float64).reshape(-1)),
        layout=LAYOUT_68,
    )


def read_cofw68(root: str | Path) -> list[FaceRecord]:
    """Read COFW-68 under `root` (see `read_cofw68_with_report`)."""
    records, report = read_cofw68_with_report(root, strict=True)
    log.info("%s", report.summary())
    return records


def read_cofw68_with_report(root: str | Path, strict: bool = True) -> tuple[list[FaceRecord], CofwReport]:
    """Read the 68-point test faces: images from `COFW_test_color.mat`, points and boxes from `COFW68_Data/`.

    A broken face raises its FormatError when `strict`; otherwise it is left out and kept in `report.problems`.
    Missing or broken image and box files always raise: without them no face can be read.
    """
    root = Path(root)
    spec = FILES_BY_SPLIT["test"]
    images_path = root / spec.name
    if not images_path.is_file() or not (root / COFW68_DIR).is_dir():
        raise FormatError(root, f"expected {spec.name} (the images) and {COFW68_DIR}/ beside it{_found(root)}")
    images = read_mat(images_path, (spec.images,))[spec.images]
    if not isinstance(images, list):
        raise FormatError(images_path, f"{spec.images} is not a cell array; expected an N×1 cell array of images")
    boxes = numeric(root / COFW68_BOXES, "bboxes", read_mat(root / COFW68_BOXES, ("bboxes",))["bboxes"], 4)
    if len(boxes) != len(images):
        raise FormatError(
            root / COFW68_BOXES, f"bboxes has {len(boxes)} rows; expected one per image of {spec.name} ({len(images)})"
        )
    report = CofwReport(root=root, files=[spec.name, COFW68_BOXES, f"{COFW68_ANNOTATIONS}/"])
    records: list[FaceRecord] = []
    for index, image in enumerate(images):
        try:
            record = cofw68_face(root, index, boxes[index], image, images_path)
        except FormatError as problem:
            report.collect(problem, strict)
            continue
        report.add(root, record, image)
        records.append(record)
    return records, report


def write_cofw68(records: Sequence[FaceRecord], root: str | Path) -> Path:
    """Write 68-point test records as COFW-68 lays them out (MATLAB v5, as published): one `<i>_points.mat` per
    face and the box file. The images stay in `COFW_test_color.mat` (see `write_cofw`)."""
    root = Path(root)
    check_order(records, "test", LAYOUT_68)
    for index, record in enumerate(records):
        occluded = (~record.visible).astype(np.float64).reshape(-1, 1)
        write_mat(root / annotation_file(index), {"Points": record.landmarks + 1.0, "Occ": occluded})
    write_mat(root / COFW68_BOXES, {"bboxes": np.stack([box_to_xywh(r.bbox) for r in records])})
    return root
