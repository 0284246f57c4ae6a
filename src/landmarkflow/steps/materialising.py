"""How a step running elsewhere (a pod) gets its data: the manifest's images it reads, fetched by data version.

Ingest records the data hash, the DVC remote it pushed to and the root's path inside the versioned folder;
a later step fetches only the images of the splits it reads into its own scratch folder, checked against
their md5, and runs on that folder as its root. Real faces for evaluation travel the same way: a folder version
in the same remote, named by its hash.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TypeVar

from landmarkflow.data.manifest import read_manifest
from landmarkflow.data.materialise import materialise
from landmarkflow.steps.results import IngestResult, TrainResult, require_remote

Located = TypeVar("Located", IngestResult, TrainResult)


def materialise_data(located: Located, splits: Collection[str] | None, dest: str | Path) -> Located:
    """A copy of `located` whose root is in `dest`, holding the manifest's images of `splits` (None: all)."""
    require_remote(located, "a step elsewhere")
    frame = read_manifest(located.manifest)
    if splits is not None:
        frame = frame[frame["split"].isin(list(splits))]
    inside = PurePosixPath(located.root_in_version)
    paths = {(inside / image).as_posix() for image in frame["image_path"]}
    materialise(located.data_hash, located.data_remote, dest, paths)
    return replace(located, root=str(Path(dest) / located.root_in_version))


def materialise_folder(version: str, located: Located, dest: str | Path) -> Path:
    """Fetch the whole folder version `version` (a `.dir` hash) from the DVC remote `located`'s data came from."""
    if not located.data_remote:
        raise ValueError(
            f"folder version {version}: the data of {located.manifest} came from no DVC remote, so there is none to "
            "fetch it from; give ingest a remote and push the folder there"
        )
    return materialise(version, located.data_remote, dest).dest
