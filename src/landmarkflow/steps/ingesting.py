"""The ingest step: native dataset files -> manifest, with the data hash that ties every later step to the bytes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from landmarkflow.data import versioning
from landmarkflow.data.formats.readers import read_dataset_leniently
from landmarkflow.data.manifest import write_manifest
from landmarkflow.steps.results import IngestResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthOptions:
    """How to render the synthetic default when its folder is empty."""

    num_train: int = 2000
    num_test: int = 300
    seed: int = 0
    image_size: int = 256


@dataclass(frozen=True)
class DataRevision:
    """Data pinned by a git revision: a pod clones `repo` at `rev` into `checkout_dir` and `dvc pull`s data.dvc.

    `remote_url` / `endpoint_url` point the clone at the object store as the pod sees it (written to the
    clone's git-ignored `.dvc/config.local`); credentials come from the environment only.
    """

    repo: str
    rev: str
    checkout_dir: Path
    remote_url: str | None = None
    endpoint_url: str | None = None


def ingest(
    dataset: str,
    root: str | Path,
    manifest_path: str | Path,
    synth: SynthOptions | None = None,
    repo_root: str | Path | None = None,
    revision: DataRevision | None = None,
) -> IngestResult:
    """Read a dataset from its native files into a manifest, versioning the bytes with DVC.

    With `revision`, the data is first materialised from git + DVC and `root` is a path inside that
    checkout (e.g. data/raw/synthetic); the pinned DVC hash is the data hash. Otherwise, for `synthetic`,
    an empty root is first rendered from `synth`, and when `root` lies inside the repo's DVC-tracked
    `data/` the folder is (re)tracked and pushed and its DVC hash becomes the data hash.
    """
    if revision is not None:
        return _ingest_revision(dataset, Path(root), Path(manifest_path), revision)
    root = Path(root).resolve()
    if dataset == "synthetic" and synth is not None and not any(root.glob("**/*.pts")):
        from landmarkflow.data.synthetic import synthesize

        synthesize(root, synth.num_train, synth.num_test, seed=synth.seed, image_size=synth.image_size)
    return _read_into_manifest(
        dataset, root, Path(manifest_path), lambda path: _data_hash(root, Path(repo_root) if repo_root else None, path)
    )


def _ingest_revision(dataset: str, root: Path, manifest_path: Path, revision: DataRevision) -> IngestResult:
    if root.is_absolute() or ".." in root.parts:
        raise ValueError(f"with a git revision, the data root must be a path inside the repo, got {root}")
    pulled = versioning.checkout_revision(
        revision.repo,
        revision.rev,
        revision.checkout_dir,
        remote_url=revision.remote_url,
        endpoint_url=revision.endpoint_url,
    )
    log.info(
        "data of %s@%s (commit %s) pulled into %s", revision.repo, revision.rev, pulled.commit[:12], pulled.data_dir
    )
    return _read_into_manifest(
        dataset, Path(revision.checkout_dir).resolve() / root, manifest_path, lambda _: pulled.version.md5
    )


def _read_into_manifest(
    dataset: str, root: Path, manifest_path: Path, data_hash_of: Callable[[Path], str]
) -> IngestResult:
    records, broken = read_dataset_leniently(dataset, root)
    problems = [{"check": e.check, "file": str(e.path), "line": e.line, "message": str(e)} for e in broken]
    for problem in problems:
        log.warning("not ingested: %s", problem["message"])
    path = write_manifest(records, manifest_path)
    data_hash = data_hash_of(path)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.split] = counts.get(record.split, 0) + 1
    layouts = sorted({r.layout for r in records})
    log.info("ingested %d faces of %s from %s (%s), data hash %s", len(records), dataset, root, counts, data_hash)
    return IngestResult(dataset, ",".join(layouts), str(root), str(path), data_hash, counts, problems)


def _data_hash(root: Path, repo_root: Path | None, manifest: Path) -> str:
    repo_root = repo_root.resolve() if repo_root else None
    tracked_dir = repo_root / "data" if repo_root else None
    if tracked_dir is not None and root.is_relative_to(tracked_dir):
        return versioning.track(tracked_dir, repo_root).md5
    return "manifest-sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()[:32]
