"""A second real-photo dev set, 43 faces: the example faces of dlib 19.5's source distribution on PyPI, laid out
in the 300W format (lfpw/testset/, one crop per face) for `evaluate --real-faces`, `bench/bench_tilt.py` and
`make pipeline-run REAL_FACES=DIR`.

    .venv/bin/python tools/dlib_example_faces.py OUT_DIR      (downloads 47 MB from PyPI once per call)

The photos are nine group photos from PASCAL VOC 2011 (faces 37-110 px wide, mostly frontal), and their 68 points
are not human annotations: dlib placed them with its own 300W-trained model (`shape_predictor_68_face_landmarks`),
in whole pixels. So this set measures agreement with a model that follows the 300W annotators' conventions, to
within that model's error: ten times the four faces of `../shared/tools/real_dev_faces.py`, for a steadier view of
biases that show on every face (a jaw read too narrow), not a benchmark and not ground truth. Nothing of it is
committed: research use only, as the benchmarks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
import tempfile
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from landmarkflow.data.formats.w300 import FOLDERS_BY_PATH, write_300w
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.geometry import landmark_box
from landmarkflow.imageio import read_rgb

RELEASE = "19.5.0"  # the one dlib sdist on PyPI that carries its docs, examples/faces included
FACES_DIR = f"dlib-{RELEASE}/docs/docs/cache/examples/faces"
LANDMARK_FILES = ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml")
FOLDER = "lfpw/testset"  # a 300W test folder (its split and subsets: w300.FOLDERS), read as a test split
CROP_SIDE = 3.0  # crop side in face-box sides, around the landmarks' centre: room to roll the photo


def download_sdist(into: Path) -> Path:
    """dlib's sdist from PyPI, checked against the SHA-256 that PyPI's JSON API publishes for it."""
    with urllib.request.urlopen("https://pypi.org/pypi/dlib/json", timeout=60) as reply:
        (sdist,) = [f for f in json.load(reply)["releases"][RELEASE] if f["packagetype"] == "sdist"]
    path = into / sdist["filename"]
    digest = hashlib.sha256()
    with urllib.request.urlopen(sdist["url"], timeout=60) as reply, path.open("wb") as out:
        while chunk := reply.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sdist["digests"]["sha256"]:
        raise RuntimeError(f"{sdist['url']}: SHA-256 {digest.hexdigest()}, PyPI says {sdist['digests']['sha256']}")
    return path


def extract_faces(sdist: Path, into: Path) -> Path:
    """Only the faces folder of the 47 MB archive."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(FACES_DIR + "/")]
        tar.extractall(into, members=members, filter="data")
    return into / FACES_DIR


def faces_in(folder: Path) -> list[tuple[str, list[tuple[float, np.ndarray]]]]:
    """(image file, its faces as (face box side, 68 0-based points)) for every annotated image, in file order."""
    images = []
    for name in LANDMARK_FILES:
        for image in ET.parse(folder / name).getroot().iter("image"):
            faces = []
            for box in image.iter("box"):
                parts = sorted(box.iter("part"), key=lambda part: int(part.get("name")))
                points = np.array([[float(p.get("x")), float(p.get("y"))] for p in parts])
                if points.shape != (68, 2):
                    raise ValueError(f"{folder / name}: a face in {image.get('file')} has {len(points)} points, not 68")
                faces.append((float(box.get("width")), points))
            images.append((image.get("file"), faces))
    return images


def crop_record(
    file: str, index: int, side: float, points: np.ndarray, photo: np.ndarray
) -> tuple[FaceRecord, np.ndarray]:
    """One face cut out of its group photo (BGR, as the writers take it), as a 300W record and its image."""
    centre = points.mean(axis=0)
    half = CROP_SIDE * side / 2
    x0, y0 = np.maximum(0, np.floor(centre - half)).astype(int)
    x1, y1 = np.minimum(photo.shape[1::-1], np.ceil(centre + half)).astype(int)
    crop = np.ascontiguousarray(photo[y0:y1, x0:x1])
    local = points - (x0, y0)
    stem = f"{Path(file).stem}_{index}"
    folder = FOLDERS_BY_PATH[FOLDER]
    record = FaceRecord(
        sample_id=f"{FOLDER}/{stem}",
        dataset="300w",
        split=folder.split,
        image_path=f"{FOLDER}/{stem}.png",
        width=crop.shape[1],
        height=crop.shape[0],
        bbox=landmark_box(local),
        landmarks=local,
        visible=np.ones(68, bool),
        layout="68",
        subsets=folder.subsets,
    )
    return record, crop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the 300W layout into")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = extract_faces(download_sdist(Path(tmp)), Path(tmp))
        records, images = [], {}
        for file, faces in faces_in(folder):
            photo = read_rgb(folder / file)[..., ::-1]
            for index, (side, points) in enumerate(faces):
                record, crop = crop_record(file, index, side, points, photo)
                records.append(record)
                images[record.sample_id] = crop
    write_300w(records, args.out, images)
    print(f"{len(records)} faces in {args.out / FOLDER} (points from dlib's model, not human annotators)")


if __name__ == "__main__":
    main()
