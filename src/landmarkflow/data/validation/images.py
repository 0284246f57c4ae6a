"""Image checks in plain Python: the file exists, decodes, has the size the manifest claims, and the
same picture (by content, whatever its name) does not sit in two splits. Where a dataset's official split is
per face (profiles.py), one file holding faces of two splits is its protocol; a copy under another name is not.

Each distinct image is decoded once (a multi-face image has several manifest rows), by the training loader's
own decoder (`imageio.decode_bgr`), so EXIF rotation is applied the same way, the size compared is the size training
will see, and a file training cannot read fails here. cv2 releases the GIL while decoding, so a thread pool scales.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from landmarkflow.data.validation.profiles import split_is_per_face
from landmarkflow.data.validation.table import format_int
from landmarkflow.imageio import decode_bgr


@dataclass(frozen=True)
class ImageProbe:
    """What reading one image file found; width/height are None unless it decoded."""

    exists: bool
    opens: bool
    width: int | None = None
    height: int | None = None
    digest: str | None = None


def probe_image(path: Path) -> ImageProbe:
    """Read the file once: hash its bytes, then decode the same buffer."""
    if not path.is_file():
        return ImageProbe(exists=False, opens=False)
    data = path.read_bytes()
    digest = hashlib.sha1(data).hexdigest()
    image = decode_bgr(data)  # as training and `predict` decode it
    if image is None:
        return ImageProbe(exists=True, opens=False, digest=digest)
    return ImageProbe(exists=True, opens=True, width=int(image.shape[1]), height=int(image.shape[0]), digest=digest)


def probe_images(root: Path, image_paths: list[str], workers: int | None = None) -> dict[str, ImageProbe]:
    """Probe each distinct relative path under `root` once, in parallel."""
    unique = list(dict.fromkeys(image_paths))
    workers = workers or min(16, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        probes = pool.map(lambda rel: probe_image(root / rel), unique)
        return dict(zip(unique, probes, strict=True))


def image_failures(faces: pd.DataFrame, root: Path) -> dict[str, dict[int, str]]:
    """Failing rows per image check with a short reason; rows whose path escapes the root are not read."""
    readable = faces.loc[faces["path_is_relative"].astype(bool)]
    probes = probe_images(root, readable["image_path"].tolist())
    failures: dict[str, dict[int, str]] = {"image_exists": {}, "image_opens": {}, "image_size": {}, "split_leak": {}}
    for index, path, width, height in zip(
        readable.index, readable["image_path"], readable["width"], readable["height"], strict=True
    ):
        probe = probes[path]
        if not probe.exists:
            failures["image_exists"][int(index)] = f"no file {root / path}"
        elif not probe.opens:
            failures["image_opens"][int(index)] = "OpenCV cannot decode it"
        elif (probe.width, probe.height) != (width, height):
            failures["image_size"][int(index)] = (
                f"{probe.width}x{probe.height} on disk, manifest says {format_int(width)}x{format_int(height)}"
            )
    failures["split_leak"] = content_leaks(readable, probes)
    return failures


def content_leaks(faces: pd.DataFrame, probes: dict[str, ImageProbe]) -> dict[int, str]:
    """Rows whose image bytes also appear in another split: under any name, or under another name only where the
    dataset's split is per face."""
    digests = faces["image_path"].map(lambda path: probes[path].digest)
    hashed = faces[digests.notna()]
    leaks: dict[int, str] = {}
    for _, group in hashed.groupby(digests[digests.notna()]):
        if group["split"].nunique() < 2:
            continue
        files = set(zip(group["image_path"], group["split"], strict=True))
        for index, path, split, dataset in zip(
            group.index, group["image_path"], group["split"], group["dataset"], strict=True
        ):
            same_file_allowed = split_is_per_face(dataset)
            others = sorted({f"{p} ({s})" for p, s in files if s != split and not (same_file_allowed and p == path)})
            if others:
                leaks[int(index)] = f"same image content as {', '.join(others)}; split {split}"
    return leaks
