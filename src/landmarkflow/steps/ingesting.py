"""The ingest step: native dataset files -> manifest, with the data hash that ties every later step to the bytes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from landmarkflow.data import versioning
from landmarkflow.data.formats.readers import read_dataset_leniently
from landmarkflow.data.manifest import read_manifest, writable_manifest_path, write_manifest
from landmarkflow.data.synthetic_default import SynthOptions
from landmarkflow.fileio import atomic_path
from landmarkflow.steps.results import IngestResult, file_sha256

log = logging.getLogger(__name__)

CONTENT_HASH_PREFIX = "content-sha256:"
"""The data hash of unversioned data (`content_hash`)."""


@dataclass(frozen=True)
class DataRevision:
    """Data pinned by a git revision: a pod clones `repo` at `rev` into `checkout_dir` and `dvc pull`s data.dvc."""

    repo: str
    rev: str
    checkout_dir: Path


@dataclass(frozen=True)
class _Versioned:
    """The data hash, the DVC remote holding that version ("" if none) and the root's path inside it."""

    data_hash: str
    remote: str = ""
    root_in_version: str = ""


def ingest(
    dataset: str,
    root: str | Path,
    manifest_path: str | Path,
    synth: SynthOptions | None = None,
    repo_root: str | Path | None = None,
    revision: DataRevision | None = None,
    remote: str | None = None,
) -> IngestResult:
    """Read a dataset from its native files into a manifest, versioning the bytes with DVC.

    `remote` is a DVC remote's URL (s3://bucket/prefix, endpoint and credentials from the environment, or a
    local folder): where the data is pushed, and what the result tells later steps to fetch it from.
    With `revision`, the data is first materialised from git + DVC (pulled from `remote` when given) and
    `root` is a path inside that checkout (e.g. data/raw/synthetic); the pinned DVC hash is the data hash.
    Otherwise, for `synthetic`, an empty root is first rendered from `synth`; a root inside the repo's
    DVC-tracked `data/` is versioned as part of `data/` (pushed to `remote`, else the repo's default
    remote), and any other root, given a `remote`, is versioned on its own. Without either, the data
    hash is `content_hash` (the manifest's and its images' bytes) and the data stays where it is. The manifest
    is put in place only once the data is versioned: a failure leaves the one there was.
    """
    if revision is not None:
        return _ingest_revision(dataset, Path(root), Path(manifest_path), revision, remote)
    root = Path(root).resolve()
    if dataset == "synthetic" and synth is not None and not any(root.glob("**/*.pts")):
        from landmarkflow.data.synthetic import synthesize

        synthesize(root, synth.num_train, synth.num_test, seed=synth.seed, image_size=synth.image_size)
    return _read_into_manifest(
        dataset,
        root,
        Path(manifest_path),
        lambda path: _version(root, Path(repo_root) if repo_root else None, remote, path),
    )


def _ingest_revision(
    dataset: str, root: Path, manifest_path: Path, revision: DataRevision, remote: str | None
) -> IngestResult:
    if root.is_absolute() or ".." in root.parts:
        raise ValueError(f"with a git revision, the data root must be a path inside the repo, got {root}")
    pulled = versioning.checkout_revision(revision.repo, revision.rev, revision.checkout_dir, remote_url=remote)
    log.info(
        "data of %s@%s (commit %s) pulled into %s", revision.repo, revision.rev, pulled.commit[:12], pulled.data_dir
    )
    root = Path(revision.checkout_dir).resolve() / root
    versioned = _Versioned(
        pulled.version.md5,
        versioning.remote_url(Path(revision.checkout_dir).resolve(), str(pulled.version.remote)),
        _path_inside(root, pulled.data_dir),
    )
    return _read_into_manifest(dataset, root, manifest_path, lambda _: versioned)


def _read_into_manifest(
    dataset: str, root: Path, manifest_path: Path, version_of: Callable[[Path], _Versioned]
) -> IngestResult:
    records, broken = read_dataset_leniently(dataset, root)
    problems = [{"check": e.check, "file": str(e.path), "line": e.line, "message": str(e)} for e in broken]
    for problem in problems:
        log.warning("not ingested: %s", problem["message"])
    path = writable_manifest_path(manifest_path)
    with atomic_path(path) as staged:  # in place only once versioned: a failure leaves the old manifest
        write_manifest(records, staged)
        versioned = version_of(staged)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.split] = counts.get(record.split, 0) + 1
    layouts = sorted({r.layout for r in records})
    log.info(
        "ingested %d faces of %s from %s (%s), data hash %s%s",
        len(records),
        dataset,
        root,
        counts,
        versioned.data_hash,
        f" in {versioned.remote}" if versioned.remote else "",
    )
    return IngestResult(
        dataset,
        ",".join(layouts),
        str(root),
        str(path),
        versioned.data_hash,
        counts,
        problems,
        data_remote=versioned.remote,
        root_in_version=versioned.root_in_version,
        manifest_sha256=file_sha256(path),
    )


def _version(root: Path, repo_root: Path | None, remote: str | None, manifest: Path) -> _Versioned:
    """Version the data: as part of the repo's tracked data/, or the root on its own, or not at all."""
    if repo_root is not None and root.is_relative_to(tracked_dir := repo_root.resolve() / "data"):
        name = versioning.remote_for_url(repo_root, remote) if remote else versioning.default_remote(repo_root)
        version = versioning.track(tracked_dir, repo_root, remote=name)
        return _Versioned(version.md5, versioning.remote_url(repo_root, name), _path_inside(root, tracked_dir))
    if remote:
        return _Versioned(versioning.track_outside(root, remote), versioning.normalise_remote_url(remote))
    return _Versioned(content_hash(manifest, root))


def content_hash(manifest: Path, root: Path) -> str:
    """The data hash of data no DVC versions: the manifest's bytes (annotations, boxes, splits) and those of every
    image it names, so that images changed under unchanged annotations are new data too."""
    digest = hashlib.sha256(manifest.read_bytes())
    for image in sorted(set(read_manifest(manifest)["image_path"])):
        digest.update(f"\0{image}\0".encode())
        try:
            with open(root / image, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
        except OSError:  # validation's image checks name it; the hash only has to differ from a readable file's
            digest.update(b"\0unreadable\0")
    return CONTENT_HASH_PREFIX + digest.hexdigest()[:32]


def _path_inside(root: Path, versioned_dir: Path) -> str:
    """`root` relative to the versioned folder, `/`-separated ("" for the folder itself)."""
    if not root.resolve().is_relative_to(versioned_dir.resolve()):
        raise ValueError(f"the data root {root} is not inside {versioned_dir}, the folder DVC versions")
    inside = root.resolve().relative_to(versioned_dir.resolve()).as_posix()
    return "" if inside == "." else inside
