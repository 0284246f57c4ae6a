"""Read objects from a DVC remote without DVC: a local folder or S3, with bounded retries for S3.

DVC 3 stores every file under its md5 (`<remote>/files/md5/<2 hex>/<30 hex>`) and a folder as a JSON listing
under `<md5>.dir` beside them. A pod that needs a few files of a multi-GB version fetches exactly those objects:
no git clone, no DVC repo, no cache. Endpoint and credentials of S3 come from the environment (boto3 reads
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL itself), never from a URL or a parameter.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from landmarkflow.services import S3_ENDPOINT

log = logging.getLogger(__name__)

OBJECT_ID = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
CHUNK_BYTES = 1 << 20
T = TypeVar("T")


class RemoteError(RuntimeError):
    """A DVC remote could not be read: unreachable after the retries, credentials refused, or an unusable URL."""


class MissingObjectError(RemoteError):
    """The remote answered, but holds no object under that md5."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff: wait `first_delay_s`, doubling up to `max_delay_s`, between
    `attempts` tries. The default rides out an object store gone for about a minute and a half."""

    attempts: int = 8
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delays(self) -> Iterable[float]:
        """The waits between consecutive attempts (`attempts - 1` of them)."""
        for attempt in range(self.attempts - 1):
            yield min(self.first_delay_s * 2**attempt, self.max_delay_s)

    def run(
        self,
        attempt: Callable[[], T],
        *,
        refusal: Callable[[Exception], Exception | None],
        exhausted: Callable[[Exception], Exception],
        describe: Callable[[Exception], str],
        logger: logging.Logger,
    ) -> T:
        """`attempt()` until it returns. `refusal` reads each failure: None for an outage, tried again after the next
        delay; the failure itself to raise it as it is; another error to raise that from it. Once the attempts are
        spent, `exhausted` of the last outage is raised. Each retry is logged on `logger` (the caller's) as
        `describe` puts the outage."""
        delays = iter(self.delays())
        while True:
            try:
                return attempt()
            except Exception as exc:
                error = refusal(exc)
                if error is exc:
                    raise
                if error is not None:
                    raise error from exc
                delay = next(delays, None)
                if delay is None:
                    raise exhausted(exc) from exc
                logger.warning("%s; retrying in %.1f s", describe(exc), delay)
                time.sleep(delay)


DEFAULT_RETRY = RetryPolicy()


def object_key(md5: str) -> str:
    """The object's path inside a DVC 3 remote: `files/md5/ab/cdef...` (`.dir` kept for a listing)."""
    if not OBJECT_ID.match(md5):
        raise ValueError(f"{md5!r} is not a DVC md5 (32 hex digits, `.dir` for a folder)")
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def copy_hashing(source: BinaryIO, target: Path) -> str:
    """Write `source` to `target` and return the md5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    with target.open("wb") as out:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


class DvcRemote(ABC):
    """The objects of one DVC remote; every method is safe to call from several threads at once."""

    url: str

    @abstractmethod
    def download(self, md5: str, target: Path) -> str:
        """Write object `md5` to `target` (overwritten) and return the md5 of the bytes written.

        Raises MissingObjectError when the remote has no such object, RemoteError when it cannot be read.
        """


class LocalRemote(DvcRemote):
    """A DVC remote in a local (or mounted) folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = str(self.root)
        if not self.root.is_dir():
            raise RemoteError(f"the DVC remote {self.url} is not a folder")

    def download(self, md5: str, target: Path) -> str:
        source = self.root / object_key(md5)
        try:
            with source.open("rb") as stream:
                return copy_hashing(stream, target)
        except FileNotFoundError as exc:
            raise MissingObjectError(f"{self.url} has no object {object_key(md5)}") from exc
        except OSError as exc:
            raise RemoteError(f"cannot read {source} of the DVC remote {self.url}: {exc}") from exc


class S3Remote(DvcRemote):
    """A DVC remote at `s3://bucket/prefix`; the endpoint (SeaweedFS, MinIO; unset for AWS) from AWS_ENDPOINT_URL.

    botocore's own retries are off so that `retry` is the one policy: a transient error (no connection, a
    timeout, a 5xx, throttling, a body cut short) is retried with backoff, then reported naming endpoint and
    bucket. A 403 or a missing object is an answer, not an outage, and is reported at once.
    """

    def __init__(self, url: str, retry: RetryPolicy = DEFAULT_RETRY, connections: int = 16) -> None:
        import boto3
        from botocore.config import Config

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket:
            raise RemoteError(f"{url!r} is not an S3 URL (s3://bucket/prefix)")
        self.url, self.bucket, self.prefix = url, bucket, prefix.strip("/")
        self.endpoint = os.environ.get(S3_ENDPOINT) or "AWS S3"
        self.retry = retry
        config = Config(
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=connections,
        )
        # A session of its own reads the environment now; boto3's default session keeps what it read first.
        self.client = boto3.session.Session().client("s3", config=config)

    def download(self, md5: str, target: Path) -> str:
        key = f"{self.prefix}/{object_key(md5)}" if self.prefix else object_key(md5)

        def attempt() -> str:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return copy_hashing(body, target)
            finally:
                body.close()

        where = f"S3 endpoint {self.endpoint}, bucket {self.bucket}"
        return self.retry.run(
            attempt,
            refusal=lambda exc: self._refusal(exc, key, where),
            exhausted=lambda exc: RemoteError(
                f"{where} did not answer after {self.retry.attempts} attempts for {key}: {exc}"
            ),
            describe=lambda exc: f"{where}: {exc}",
            logger=log,
        )

    def _refusal(self, exc: Exception, key: str, where: str) -> Exception | None:
        """The error S3's answer means for `key`, None for an outage (no connection, a timeout, a 5xx, throttling, a
        body cut short), or `exc` itself where it is no S3 failure at all."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            ParamValidationError,
            PartialCredentialsError,
        )

        if isinstance(exc, ClientError):
            code, status = _client_error(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                return MissingObjectError(f"{self.url} has no object {key} ({where})")
            if status < 500 and code not in _TRANSIENT_CODES:
                return RemoteError(f"{where} refused {key}: {code} ({exc})")
            return None
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError, ParamValidationError)):
            return RemoteError(f"{where}: {exc}")
        return None if isinstance(exc, (BotoCoreError, ConnectionError)) else exc


_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed"}


def _client_error(exc: Any) -> tuple[str, int]:
    response = exc.response or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code, status


def open_remote(url: str, retry: RetryPolicy = DEFAULT_RETRY, connections: int = 16) -> DvcRemote:
    """The remote at `url`: `s3://bucket/prefix`, or a local folder (a path or `file://` URL)."""
    if url.startswith("s3://"):
        return S3Remote(url, retry, connections)
    if "://" in url and not url.startswith("file://"):
        raise RemoteError(f"unsupported DVC remote {url!r}: expected s3://bucket/prefix or a local folder")
    return LocalRemote(Path(url.removeprefix("file://")))
