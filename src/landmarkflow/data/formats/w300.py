"""300W in its native forms: .pts files in the download's folder layout, the box .mat files, HRNet's csv.

The 300W-private faces (`01_Indoor/`, `02_Outdoor/`) are split "private" (`manifest.PRIVATE_SPLIT`), not
"test": the headline test set is the 689 faces of the full set (common 554 + challenging 135).

Conventions converted here (DESIGN.md, "Manifest"): .pts files and `bb_ground_truth` boxes are 1-based
(MATLAB), the manifest is 0-based, so readers subtract 1 and writers add it back. HRNet's csv is already
0-based: its loader adds 1 before its 1-based crop transform.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.io

from landmarkflow.data.formats.common import IMAGE_SUFFIXES, encode_image, image_size
from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.matlab import save_mat_v5
from landmarkflow.data.formats.read_report import FormatReport
from landmarkflow.data.manifest import PRIVATE_SPLIT, FaceRecord
from landmarkflow.fileio import atomic_path, atomic_write_bytes, atomic_write_text
from landmarkflow.geometry import landmark_box
from landmarkflow.layouts import get_layout

log = logging.getLogger(__name__)

PTS_DECIMALS = 6  # 1-based values written with 6 decimals come back within 5e-7 px
BOX_DIR = "Bounding Boxes"
HRNET_SCALE_UNIT = 200.0  # HRNet's scale = box side / 200


@dataclass(frozen=True)
class W300Folder:
    """One folder of the 300W download: where it lies, which split and subsets its faces belong to."""

    path: str
    split: str
    subsets: tuple[str, ...]
    box_name: str

    @property
    def box_file(self) -> str:
        """Path of its box file relative to the dataset root."""
        return f"{BOX_DIR}/bounding_boxes_{self.box_name}.mat"


FOLDERS: tuple[W300Folder, ...] = (
    W300Folder("afw", "train", (), "afw"),
    W300Folder("helen/trainset", "train", (), "helen_trainset"),
    W300Folder("lfpw/trainset", "train", (), "lfpw_trainset"),
    W300Folder("helen/testset", "test", ("common", "full"), "helen_testset"),
    W300Folder("lfpw/testset", "test", ("common", "full"), "lfpw_testset"),
    W300Folder("ibug", "test", ("challenging", "full"), "ibug"),
    W300Folder("01_Indoor", PRIVATE_SPLIT, (), "01_Indoor"),
    W300Folder("02_Outdoor", PRIVATE_SPLIT, (), "02_Outdoor"),
)
FOLDERS_BY_PATH: dict[str, W300Folder] = {f.path: f for f in FOLDERS}


# ------------------------------------------------------------------------------------------------ .pts


def read_pts(path: str | Path) -> np.ndarray:
    """Read a .pts file into (K, 2) 0-based float64 points, with errors that name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not a text .pts file ({exc.reason})") from None
    n_points: int | None = None
    header_line = 0
    i = 0
    while i < len(lines) and lines[i].strip() != "{":
        text = lines[i].strip()
        key, sep, value = text.partition(":")
        if text and not sep:
            raise FormatError(path, f"expected a header line 'key: value' or '{{', found {text!r}", i + 1)
        if key.strip() == "n_points":
            try:
                n_points = int(value)
            except ValueError:
                raise FormatError(path, f"n_points must be an integer, found {value.strip()!r}", i + 1) from None
            if n_points < 0:
                raise FormatError(path, f"n_points must not be negative, found {n_points}", i + 1)
            header_line = i + 1
        i += 1
    if i == len(lines):
        raise FormatError(path, "truncated: no '{' opening the point list after the header", max(len(lines), 1))
    if n_points is None:
        raise FormatError(path, "the header before '{' lacks 'n_points: K'", i + 1)
    points = np.empty((n_points, 2), dtype=np.float64)
    for k in range(n_points):
        number = i + 2 + k  # 1-based line number of point k
        if number > len(lines):
            raise FormatError(
                path,
                f"truncated: n_points (line {header_line}) says {n_points} but the file ends after {k}",
                len(lines),
            )
        text = lines[number - 1].strip()
        if text == "}":
            raise FormatError(
                path, f"n_points (line {header_line}) says {n_points} but '}}' closes the list after {k} points", number
            )
        fields = text.split()
        if len(fields) != 2:
            raise FormatError(path, f"expected two numbers 'x y', found {len(fields)} fields in {text!r}", number)
        try:
            x, y = float(fields[0]), float(fields[1])
        except ValueError:
            raise FormatError(path, f"non-numeric coordinate in {text!r}; expected two numbers 'x y'", number) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise FormatError(
                path, f"coordinate is not finite in {text!r}; expected finite numbers", number, check="no_nan"
            )
        points[k] = (x, y)
    rest = [(n + 1, lines[n].strip()) for n in range(i + 1 + n_points, len(lines)) if lines[n].strip()]
    if not rest:
        raise FormatError(path, f"truncated: expected '}}' after the {n_points} points", max(len(lines), 1))
    if rest[0][1] != "}":
        raise FormatError(
            path,
            f"expected '}}' after {n_points} points (n_points, line {header_line}), found {rest[0][1]!r}",
            rest[0][0],
        )
    if len(rest) > 1:
        raise FormatError(path, f"unexpected content after '}}': {rest[1][1]!r}", rest[1][0])
    return points - 1.0


def format_pts(points: np.ndarray) -> str:
    """The text of a .pts file for 0-based (K, 2) points (written 1-based)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (K, 2), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite to be written to a .pts file")
    body = "".join(f"{x:.{PTS_DECIMALS}f} {y:.{PTS_DECIMALS}f}\n" for x, y in (pts + 1.0).tolist())
    return f"version: 1\nn_points: {len(pts)}\n{{\n{body}}}\n"


def write_pts(path: str | Path, points: np.ndarray) -> Path:
    """Write 0-based (K, 2) points as a 1-based .pts file, atomically."""
    path = Path(path)
    atomic_write_text(path, format_pts(points))
    return path


# ------------------------------------------------------------------------------------------------ box files


@dataclass(frozen=True)
class FaceBoxes:
    """The two boxes 300W ships per image, 0-based x1 y1 x2 y2."""

    ground_truth: np.ndarray
    detector: np.ndarray


def read_box_file(path: str | Path) -> dict[str, FaceBoxes]:
    """Read a `bounding_boxes_<subset>.mat` file: image file name -> its boxes (converted to 0-based)."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises ValueError, TypeError or its own MatReadError on damaged files
        raise FormatError(path, f"not a readable MATLAB v5 box file ({exc})") from exc
    if "bounding_boxes" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise FormatError(path, f"expected a variable 'bounding_boxes', found {keys}")
    boxes: dict[str, FaceBoxes] = {}
    for index, entry in enumerate(np.atleast_1d(mat["bounding_boxes"]).ravel()):
        try:
            name = str(entry.imgName)
            ground_truth = np.asarray(entry.bb_ground_truth, dtype=np.float64).reshape(4) - 1.0
            detector = np.asarray(entry.bb_detector, dtype=np.float64).reshape(4) - 1.0
        except (AttributeError, ValueError, TypeError) as exc:
            raise FormatError(
                path, f"entry {index + 1}: expected a struct with imgName, bb_detector and bb_ground_truth [4] ({exc})"
            ) from None
        boxes[name] = FaceBoxes(ground_truth, detector)
    return boxes


def write_box_file(path: str | Path, boxes: Mapping[str, FaceBoxes]) -> Path:
    """Write image name -> boxes as 300W's cell array of structs (1-based), atomically and byte-reproducibly."""
    path = Path(path)
    names = sorted(boxes)
    cells = np.empty((1, len(names)), dtype=object)
    fields = [("imgName", "O"), ("bb_detector", "O"), ("bb_ground_truth", "O")]
    for i, name in enumerate(names):
        entry = np.zeros((1, 1), dtype=fields)
        entry[0, 0]["imgName"] = name
        entry[0, 0]["bb_detector"] = (np.asarray(boxes[name].detector, dtype=np.float64) + 1.0).reshape(1, 4)
        entry[0, 0]["bb_ground_truth"] = (np.asarray(boxes[name].ground_truth, dtype=np.float64) + 1.0).reshape(1, 4)
        cells[0, i] = entry
    save_mat_v5(path, {"bounding_boxes": cells})
    return path


# ------------------------------------------------------------------------------------------------ folders


@dataclass
class ReadReport(FormatReport):
    """What `read_300w` found: the shared counts and problems, plus faces per folder, box sources and the images
    no .pts annotates."""

    not_read_note: ClassVar[str] = "faces not read (broken files, see the problems)"

    faces_per_folder: dict[str, int] = field(default_factory=dict)
    boxes_from_files: int = 0
    boxes_from_landmarks: int = 0
    images_without_pts: list[str] = field(default_factory=list)

    def source(self) -> str:
        """The dataset root and the faces each of its folders gave."""
        folders = ", ".join(f"{k}={v}" for k, v in self.faces_per_folder.items())
        return f"in {self.root} ({folders})"

    def details(self) -> list[str]:
        """Where the boxes came from, and the images skipped for having no .pts."""
        details = [f"boxes from .mat {self.boxes_from_files}, from landmarks {self.boxes_from_landmarks}"]
        if self.images_without_pts:
            details.append(
                f"skipped {len(self.images_without_pts)} images without .pts{_first(self.images_without_pts)}"
            )
        return details


def _first(paths: list[str], shown: int = 3) -> str:
    """The first `shown` of `paths` in brackets, for a log line; empty for none."""
    if not paths:
        return ""
    more = f", +{len(paths) - shown} more" if len(paths) > shown else ""
    return f" ({', '.join(paths[:shown])}{more})"


def read_300w(root: str | Path, dataset: str = "300w") -> list[FaceRecord]:
    """Read every face of a 300W-layout folder into manifest records (see `read_300w_with_report`)."""
    records, report = read_300w_with_report(root, dataset, strict=True)
    log.info("%s", report.summary())
    return records


def read_300w_with_report(
    root: str | Path, dataset: str = "300w", strict: bool = True, visible: Mapping[str, np.ndarray] | None = None
) -> tuple[list[FaceRecord], ReadReport]:
    """Read a 300W-layout folder: faces in a stable order (folder, then file name) and a report of what was found.

    Boxes come from `Bounding Boxes/bounding_boxes_<subset>.mat` (bb_ground_truth) where present, else they
    are the tight landmark box. Images without a .pts are skipped and reported; a .pts without its image is a
    broken file (check `image_exists`). A broken face or box file raises its FormatError when `strict`; otherwise
    it is left out and kept in `report.problems`, so that a pipeline can report every broken file at validation
    instead of the first (the faces of a broken box file are read, with landmark boxes).
    .pts files hold no visibility: every point is visible unless `visible` gives a face's flags by sample id
    (the synthetic dataset keeps them in its meta file).
    """
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "is not a folder; expected the unpacked 300W download")
    present = [f for f in FOLDERS if (root / f.path).is_dir()]
    if not present:
        raise FormatError(root, _missing_folders_message(root))
    report = ReadReport(root=root)
    records: list[FaceRecord] = []
    for folder in present:
        boxes = _folder_boxes(root / folder.box_file, report, strict)
        images, pts_files = _folder_files(root / folder.path)
        report.images_without_pts += [f"{folder.path}/{images[s].name}" for s in sorted(images.keys() - pts_files)]
        for stem in sorted(pts_files.keys() - images):  # annotations of an image the copy lacks: a broken copy
            missing = f"no image {stem}.* beside it (expected one of {', '.join(IMAGE_SUFFIXES)})"
            report.collect(FormatError(pts_files[stem], missing, check="image_exists"), strict)
        for stem in sorted(images.keys() & pts_files.keys()):
            image = images[stem]
            try:
                record = _read_face(root, folder, image, pts_files[stem], boxes.get(image.name), dataset, visible or {})
            except FormatError as problem:
                report.collect(problem, strict)
                continue
            if image.name in boxes:
                report.boxes_from_files += 1
            else:
                report.boxes_from_landmarks += 1
            records.append(record)
            report.faces_per_folder[folder.path] = report.faces_per_folder.get(folder.path, 0) + 1
            report.count(folder.split, folder.subsets)
    if not records and not report.problems:
        folders = ", ".join(f"{f.path}/" for f in present)
        raise FormatError(root, f"found the folders {folders} but no image with a same-named .pts file in them")
    return records, report


def _folder_boxes(box_path: Path, report: ReadReport, strict: bool) -> dict[str, FaceBoxes]:
    """A folder's boxes by image name: none without a box file, and none from an unreadable one unless `strict`
    (it goes to the problems, and its faces are boxed by their landmarks as without one)."""
    if not box_path.is_file():
        return {}
    try:
        return read_box_file(box_path)
    except FormatError as problem:
        report.collect(problem, strict)
        return {}


def _missing_folders_message(root: Path) -> str:
    expected = ", ".join(f"{f.path}/" for f in FOLDERS)
    found = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
    return f"no 300W folders here; expected some of {expected} (found {found or 'no folders'})"


def _folder_files(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Images and .pts files of one folder, keyed by file stem."""
    images: dict[str, Path] = {}
    pts_files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        if suffix == ".pts":
            pts_files[path.stem] = path
        elif suffix in IMAGE_SUFFIXES:
            if path.stem in images:
                raise FormatError(
                    path,
                    f"two images share the stem {path.stem!r} ({images[path.stem].name}); expected one image per .pts",
                )
            images[path.stem] = path
    return images, pts_files


def _read_face(
    root: Path,
    folder: W300Folder,
    image: Path,
    pts_path: Path,
    boxes: FaceBoxes | None,
    dataset: str,
    visible: Mapping[str, np.ndarray],
) -> FaceRecord:
    landmarks = read_pts(pts_path)
    expected = get_layout("68").num_points
    if landmarks.shape[0] != expected:
        raise FormatError(
            pts_path, f"holds {landmarks.shape[0]} points; 300W's layout 68 expects {expected}", check="point_count"
        )
    width, height = image_size(image)
    if boxes is not None:
        check_box(root / folder.box_file, image.name, boxes.ground_truth)
    bbox = boxes.ground_truth if boxes is not None else landmark_box(landmarks)
    sample_id = f"{folder.path}/{image.stem}"
    return FaceRecord(
        sample_id=sample_id,
        dataset=dataset,
        split=folder.split,
        subsets=folder.subsets,
        image_path=f"{folder.path}/{image.name}",
        width=width,
        height=height,
        bbox=bbox,
        landmarks=landmarks,
        visible=visible.get(sample_id, np.ones(expected, dtype=bool)),
        layout="68",
    )


def check_box(box_file: Path, image_name: str, box: np.ndarray) -> None:
    """Refuse a reversed or empty ground-truth box here, naming the box file, rather than as a bad crop later."""
    x1, y1, x2, y2 = box.tolist()
    if not (x1 < x2 and y1 < y2):
        raise FormatError(
            box_file,
            f"bb_ground_truth of {image_name} is {(box + 1.0).tolist()} (1-based x1 y1 x2 y2); "
            "expected x1 < x2 and y1 < y2",
            check="boxes_inside_image",
        )


def folder_of(record: FaceRecord) -> W300Folder:
    """The 300W folder a record belongs in, checking that reading it back gives the same id, split and subsets."""
    image_path = Path(record.image_path)
    folder = FOLDERS_BY_PATH.get(image_path.parent.as_posix())
    where = Path(record.image_path)
    if folder is None:
        expected = ", ".join(f"{f.path}/" for f in FOLDERS)
        raise FormatError(where, f"sample {record.sample_id}: the image must lie directly in one of {expected}")
    if image_path.suffix.lower() not in IMAGE_SUFFIXES:
        raise FormatError(where, f"sample {record.sample_id}: expected an image ending in one of {IMAGE_SUFFIXES}")
    if record.sample_id != f"{folder.path}/{image_path.stem}":
        raise FormatError(where, f"sample {record.sample_id}: 300W names a face by its image path without extension")
    if record.split != folder.split or sorted(record.subsets) != sorted(folder.subsets):
        raise FormatError(
            where,
            f"sample {record.sample_id} has split {record.split!r} subsets {list(record.subsets)}, but {folder.path}/ "
            f"holds split {folder.split!r} subsets {list(folder.subsets)}",
        )
    if record.layout != "68":
        raise FormatError(where, f"sample {record.sample_id} has layout {record.layout}; 300W holds layout 68 only")
    return folder


def write_sample(root: str | Path, record: FaceRecord, image: np.ndarray | None = None) -> None:
    """Write one face (its image when given, and its .pts) into the 300W layout, each file atomically.

    Without `image` the image file must already be there, with the record's width and height.
    """
    root = Path(root)
    folder_of(record)
    image_file = root / record.image_path
    if image is not None:
        if image.shape[:2] != (record.height, record.width) or image.dtype != np.uint8:
            raise FormatError(
                image_file,
                f"sample {record.sample_id}: image is {image.dtype} {image.shape}, expected uint8 "
                f"({record.height}, {record.width}[, 3])",
            )
        atomic_write_bytes(image_file, encode_image(image_file, image))
    elif not image_file.is_file():
        raise FormatError(image_file, f"sample {record.sample_id}: no image given and none on disk")
    elif image_size(image_file) != (record.width, record.height):
        raise FormatError(
            image_file,
            f"sample {record.sample_id}: image on disk is {image_size(image_file)}, record says "
            f"{(record.width, record.height)}",
        )
    write_pts(image_file.with_suffix(".pts"), record.landmarks)


def write_box_files(
    root: str | Path, records: Iterable[FaceRecord], detector_boxes: Mapping[str, np.ndarray] | None = None
) -> list[Path]:
    """Write one `bounding_boxes_<subset>.mat` per folder holding records: bb_ground_truth = the record's box,
    bb_detector = `detector_boxes[sample_id]` where given, else the same box."""
    per_folder: dict[W300Folder, dict[str, FaceBoxes]] = {}
    for record in records:
        folder = folder_of(record)
        detector = detector_boxes.get(record.sample_id) if detector_boxes else None
        per_folder.setdefault(folder, {})[Path(record.image_path).name] = FaceBoxes(
            ground_truth=record.bbox, detector=record.bbox if detector is None else np.asarray(detector, np.float64)
        )
    return [write_box_file(Path(root) / folder.box_file, boxes) for folder, boxes in per_folder.items()]


def write_300w(
    records: Sequence[FaceRecord],
    root: str | Path,
    images: Mapping[str, np.ndarray] | None = None,
    detector_boxes: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write records into the 300W layout: images (from `images[sample_id]`, else already on disk), .pts files
    and the box files, so that `read_300w(root)` gives the records back (visibility excepted: .pts has none)."""
    root = Path(root)
    for record in records:
        write_sample(root, record, images.get(record.sample_id) if images else None)
    write_box_files(root, records, detector_boxes)
    return root


# ------------------------------------------------------------------------------------------------ HRNet csv


def read_hrnet_csv(
    path: str | Path,
    dataset: str,
    split: str,
    layout: str = "68",
    subsets: Sequence[str] = (),
    image_root: str | Path | None = None,
) -> list[FaceRecord]:
    """Read an HRNet-style csv (`image_name, scale, center_w, center_h, x0, y0, ...`, 0-based points).

    The csv keeps a square box (centre and side = scale * 200), so `bbox` comes back as that square.
    Images are looked up under `image_root` (default: the csv's folder) for their width and height.
    """
    path = Path(path)
    image_root = Path(image_root) if image_root is not None else path.parent
    num_points = get_layout(layout).num_points
    columns = 4 + 2 * num_points
    records: list[FaceRecord] = []
    with path.open(newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or len(header) != columns:
            found = "an empty file" if header is None else f"{len(header)} columns"
            raise FormatError(
                path,
                f"expected a header of {columns} columns (image_name, scale, center_w, "
                f"center_h, {num_points} x/y pairs for layout {layout}), found {found}",
                1,
            )
        for number, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != columns:
                raise FormatError(path, f"expected {columns} fields, found {len(row)}", number)
            try:
                values = np.array([float(v) for v in row[1:]], dtype=np.float64)
            except ValueError:
                raise FormatError(path, "non-numeric field; expected numbers after image_name", number) from None
            if not np.isfinite(values).all():
                raise FormatError(path, "field is not finite; expected finite numbers", number)
            side = values[0] * HRNET_SCALE_UNIT
            centre = values[1:3]
            image_name = row[0].replace("\\", "/")
            image_file = image_root / image_name
            if not image_file.is_file():
                raise FormatError(path, f"image {image_file} does not exist", number)
            width, height = image_size(image_file)
            records.append(
                FaceRecord(
                    sample_id=str(Path(image_name).with_suffix("").as_posix()),
                    dataset=dataset,
                    split=split,
                    subsets=tuple(subsets),
                    image_path=image_name,
                    width=width,
                    height=height,
                    bbox=np.concatenate([centre - side / 2, centre + side / 2]),
                    landmarks=values[3:].reshape(num_points, 2),
                    visible=np.ones(num_points, dtype=bool),
                    layout=layout,
                )
            )
    return records


def write_hrnet_csv(records: Sequence[FaceRecord], path: str | Path) -> Path:
    """Write records as an HRNet-style csv: box centre, scale = max(w, h) / 200, 0-based points (exact)."""
    path = Path(path)
    layouts = {r.layout for r in records}
    if len(layouts) > 1:
        raise ValueError(f"an HRNet csv holds one layout; records have {sorted(layouts)}")
    num_points = get_layout(layouts.pop()).num_points if layouts else 68
    header = ["image_name", "scale", "center_w", "center_h"]
    header += [f"{axis}{i}" for i in range(num_points) for axis in ("x", "y")]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in records:
            x1, y1, x2, y2 = r.bbox.tolist()
            side = max(x2 - x1, y2 - y1)
            writer.writerow(
                [r.image_path, repr(side / HRNET_SCALE_UNIT), repr((x1 + x2) / 2), repr((y1 + y2) / 2)]
                + [repr(v) for v in r.landmarks.reshape(-1).tolist()]
            )
    return path
