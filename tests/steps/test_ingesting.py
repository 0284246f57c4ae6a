"""Ingest as a cluster pod runs it: clone a git revision, `dvc pull` its data, read it into a manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from landmarkflow import steps
from landmarkflow.data.manifest import read_manifest
from landmarkflow.data.synthetic import synthesize
from landmarkflow.data.versioning import run_dvc, track


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


def test_ingest_starts_from_a_git_revision_and_dvc_pull(data_repo: Path, tmp_path: Path) -> None:
    pinned = (data_repo / "data.dvc").read_text()
    revision = steps.DataRevision(
        repo=str(data_repo), rev="data-v1", checkout_dir=tmp_path / "pod", remote_url=str(data_repo / "dvc-remote")
    )
    result = steps.ingest("synthetic", "data/raw/synthetic", tmp_path / "out" / "manifest.parquet", revision=revision)

    assert result.data_hash in pinned
    assert result.counts == {"train": 6, "test": 3}
    assert Path(result.root) == (tmp_path / "pod" / "data" / "raw" / "synthetic").resolve()
    frame = read_manifest(result.manifest)
    assert all((Path(result.root) / p).is_file() for p in frame["image_path"])


def test_revision_ingest_refuses_a_root_outside_the_checkout(data_repo: Path, tmp_path: Path) -> None:
    revision = steps.DataRevision(repo=str(data_repo), rev="data-v1", checkout_dir=tmp_path / "pod")
    with pytest.raises(ValueError, match="path inside the repo"):
        steps.ingest("synthetic", "../elsewhere", tmp_path / "manifest.parquet", revision=revision)
