"""Materialise a data version in a fresh folder: the files a step needs, fetched from the DVC remote by md5.

This is how a pod gets its data: from the data hash ingest recorded (`<md5>.dir`), not from a host path. The
listing and every file are checked against their md5, each file appears only once complete (written beside
itself, then renamed), and a rerun into the same folder keeps what is already there and correct, so a
pod restarted mid-transfer resumes rather than starts over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Collection
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from landmarkflow.data.dvc_remote import (
    CHUNK_BYTES,
    DEFAULT_RETRY,
    OBJECT_ID,
    DvcRemote,
    MissingObjectError,
    RemoteError,
    RetryPolicy,
    object_key,
    open_remote,
)
from landmarkflow.fileio import atomic_path

log = logging.getLogger(__name__)

DEFAULT_JOBS = 16
"""Concurrent transfers: small files are latency-bound, so more in flight than cores."""


class DataVersionError(RemoteError):
    """The remote's content is not the version asked for: an unknown hash, a corrupt object, a missing file."""


@dataclass(frozen=True)
class Materialised:
    """What `materialise` left in `dest`."""

    dest: Path
    files: int
    fetched: int
    fetched_bytes: int
    seconds: float


def materialise(
    md5: str,
    remote_url: str,
    dest: str | Path,
    paths: Collection[str] | None = None,
    jobs: int = DEFAULT_JOBS,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> Materialised:
    """Fetch folder version `md5` (`<32 hex>.dir`) from the DVC remote at `remote_url` into `dest`.

    `paths` (relative to the versioned folder, `/`-separated) selects the files to fetch; None fetches all.
    Raises DataVersionError naming the hash or file when the remote lacks the version or one of `paths`,
    or holds an object whose bytes do not match its md5; RemoteError when the remote cannot be read.
    """
    started = time.perf_counter()
    if not (OBJECT_ID.match(md5) and md5.endswith(".dir")):
        raise DataVersionError(f"{md5!r} is not the DVC hash of a folder (32 hex digits + .dir)")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    remote = open_remote(remote_url, retry, connections=jobs)
    listing = read_listing(remote, md5, dest)
    wanted = _select(listing, paths, md5)
    fetched = _fetch_all(remote, wanted, dest, jobs)
    result = Materialised(
        dest,
        len(wanted),
        len(fetched),
        sum(fetched.values()),
        time.perf_counter() - started,
    )
    log.info(
        "data %s: %d files in %s (%d fetched, %.1f MB) from %s in %.1f s",
        md5,
        result.files,
        dest,
        result.fetched,
        result.fetched_bytes / 1e6,
        remote.url,
        result.seconds,
    )
    return result


def read_listing(remote: DvcRemote, md5: str, scratch: Path) -> dict[str, str]:
    """The folder version's files, `relpath -> md5`, from its `.dir` object, checked against `md5`."""
    fd, name = tempfile.mkstemp(prefix=f".{md5}.", suffix=".listing", dir=scratch)
    os.close(fd)
    part = Path(name)
    try:
        actual = remote.download(md5, part)
        raw = part.read_bytes()
    except MissingObjectError as exc:
        raise DataVersionError(
            f"data version {md5} is not in the DVC remote {remote.url} (no {object_key(md5)}); was it pushed there?"
        ) from exc
    finally:
        part.unlink(missing_ok=True)  # a listing is read, not kept
    if actual != md5.removesuffix(".dir"):
        raise DataVersionError(f"{remote.url}: the listing {object_key(md5)} is corrupt (its md5 is {actual})")
    try:
        entries = json.loads(raw)
        listing = {str(entry["relpath"]): str(entry["md5"]) for entry in entries}
    except (ValueError, TypeError, KeyError) as exc:
        raise DataVersionError(f"{remote.url}: {object_key(md5)} is not a DVC folder listing ({exc})") from exc
    for relpath, file_md5 in listing.items():
        posix = PurePosixPath(relpath)
        if posix.is_absolute() or ".." in posix.parts or not OBJECT_ID.match(file_md5) or file_md5.endswith(".dir"):
            raise DataVersionError(f"{remote.url}: {object_key(md5)} lists an unusable entry {relpath!r}: {file_md5}")
    return listing


def _select(listing: dict[str, str], paths: Collection[str] | None, md5: str) -> dict[str, str]:
    if paths is None:
        return listing
    missing = sorted(p for p in set(paths) if p not in listing)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataVersionError(f"data version {md5} has no file {shown}")
    return {p: listing[p] for p in sorted(set(paths))}


def _fetch_all(remote: DvcRemote, wanted: dict[str, str], dest: Path, jobs: int) -> dict[str, int]:
    """Fetch what `dest` lacks, `jobs` at a time; the first failure cancels the rest. Returns the sizes fetched."""
    fetched: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="materialise") as pool:
        futures = {pool.submit(_fetch_one, remote, relpath, md5, dest): relpath for relpath, md5 in wanted.items()}
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        for future, relpath in futures.items():
            size = future.result()
            if size is not None:
                fetched[relpath] = size
    return fetched


def _fetch_one(remote: DvcRemote, relpath: str, md5: str, dest: Path) -> int | None:
    """Fetch one file unless `dest` already has it intact; its size when fetched, else None."""
    target = dest / relpath
    if target.is_file() and _file_md5(target) == md5:
        return None
    with atomic_path(target) as part:
        try:
            actual = remote.download(md5, part)
        except MissingObjectError as exc:
            raise DataVersionError(f"{relpath}: {exc}") from exc
        if actual != md5:
            raise DataVersionError(
                f"{relpath}: the object {object_key(md5)} in the DVC remote {remote.url} is corrupt "
                f"(md5 {actual}, the listing says {md5}); refusing it"
            )
        return part.stat().st_size


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
