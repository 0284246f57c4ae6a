"""Ingest as a cluster pod runs it: clone a git revision, `dvc pull` its data, read it into a manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from landmarkflow import steps
from landmarkflow.data.manifest import read_manifest
from landmarkflow.data.synthetic import synthesize
from landmarkflow.data.versioning import run_dvc, track
from landmarkflow.steps.ingesting import CONTENT_HASH_PREFIX


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def data_repo(tmp_path: Path) -> Path:
    """A project repo with synthetic faces tracked by DVC (local remote), tagged data-v1."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "user.name", "test")
    run_dvc(["init"], repo)
    run_dvc(["remote", "add", "--default", "local", "dvc-remote"], repo)
    (repo / ".gitignore").write_text("/dvc-remote/\n/data/\n")
    synthesize(repo / "data" / "raw" / "synthetic", num_train=6, num_test=3, seed=1, progress=False)
    track(repo / "data", repo)
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "data v1")
    _git(repo, "tag", "data-v1")
    return repo


def _images(root: Path, manifest: str) -> dict[str, bytes]:
    return {path: (root / path).read_bytes() for path in read_manifest(manifest)["image_path"]}


def test_ingest_starts_from_a_git_revision_and_dvc_pull(data_repo: Path, tmp_path: Path) -> None:
    pinned = (data_repo / "data.dvc").read_text()
    revision = steps.DataRevision(repo=str(data_repo), rev="data-v1", checkout_dir=tmp_path / "pod")
    remote = data_repo / "dvc-remote"
    result = steps.ingest(
        "synthetic", "data/raw/synthetic", tmp_path / "out" / "manifest.parquet", revision=revision, remote=str(remote)
    )

    assert result.data_hash in pinned
    assert result.counts == {"train": 6, "test": 3}
    assert Path(result.root) == (tmp_path / "pod" / "data" / "raw" / "synthetic").resolve()
    assert (result.data_remote, result.root_in_version) == (str(remote), "raw/synthetic")
    frame = read_manifest(result.manifest)
    assert all((Path(result.root) / p).is_file() for p in frame["image_path"])


def test_a_root_in_the_repos_data_is_versioned_with_it_and_fetched_by_hash(data_repo: Path, tmp_path: Path) -> None:
    """What `make pipeline-run` does: data/ is (re)tracked and pushed; a later step fetches its split by hash."""
    root = data_repo / "data" / "raw" / "synthetic"
    result = steps.ingest("synthetic", root, tmp_path / "manifest.parquet", repo_root=data_repo)
    assert result.data_hash in (data_repo / "data.dvc").read_text()
    assert (result.data_remote, result.root_in_version) == (str(data_repo / "dvc-remote"), "raw/synthetic")
    pod = steps.materialise_data(result, ["test"], tmp_path / "pod")
    assert Path(pod.root) == tmp_path / "pod" / "raw" / "synthetic"
    frame = read_manifest(result.manifest)
    test_paths = list(frame[frame["split"] == "test"]["image_path"])
    fetched = {p.relative_to(pod.root).as_posix(): p.read_bytes() for p in Path(pod.root).rglob("*") if p.is_file()}
    assert fetched == {path: (root / path).read_bytes() for path in test_paths} and len(fetched) == 3

    elsewhere = tmp_path / "team-remote"
    pushed = steps.ingest("synthetic", root, tmp_path / "manifest2.parquet", repo_root=data_repo, remote=str(elsewhere))
    assert (pushed.data_hash, pushed.data_remote) == (result.data_hash, str(elsewhere))
    assert "pipeline" in (data_repo / ".dvc" / "config.local").read_text()  # git-ignored: data.dvc's repo is unchanged
    everything = steps.materialise_data(pushed, None, tmp_path / "pod2")
    assert _images(Path(everything.root), pushed.manifest) == _images(root, result.manifest)


def test_revision_ingest_refuses_a_root_outside_the_checkout(data_repo: Path, tmp_path: Path) -> None:
    revision = steps.DataRevision(repo=str(data_repo), rev="data-v1", checkout_dir=tmp_path / "pod")
    with pytest.raises(ValueError, match="path inside the repo"):
        steps.ingest("synthetic", "../elsewhere", tmp_path / "manifest.parquet", revision=revision)


def test_unversioned_data_is_hashed_with_its_images(tmp_path: Path) -> None:
    """Without DVC the data hash still tells two image sets apart: one image changed under the same annotations is
    new data."""
    root = tmp_path / "faces"
    synthesize(root, num_train=4, num_test=2, seed=3, progress=False)
    first = steps.ingest("synthetic", root, tmp_path / "a" / "manifest.parquet")
    again = steps.ingest("synthetic", root, tmp_path / "b" / "manifest.parquet")
    assert first.data_hash == again.data_hash and first.data_hash.startswith(CONTENT_HASH_PREFIX)

    image = root / read_manifest(first.manifest)["image_path"].iloc[0]
    image.write_bytes(image.read_bytes()[:-1] + b"\0")
    changed = steps.ingest("synthetic", root, tmp_path / "c" / "manifest.parquet")
    assert Path(changed.manifest).read_bytes() == Path(first.manifest).read_bytes()
    assert changed.data_hash != first.data_hash


def test_a_failed_ingest_leaves_the_manifest_there_was(data_repo: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.parquet"
    steps.ingest("synthetic", data_repo / "data" / "raw" / "synthetic", manifest)
    before = manifest.read_bytes()
    other = data_repo / "data" / "raw" / "other"
    synthesize(other, num_train=3, num_test=1, seed=4, progress=False)
    (data_repo / ".dvc" / "config").write_text("")  # no default remote: versioning data/ fails
    with pytest.raises(Exception, match="remote"):
        steps.ingest("synthetic", other, manifest, repo_root=data_repo)
    assert manifest.read_bytes() == before
    assert [p.name for p in tmp_path.glob(".manifest.parquet.*")] == []
