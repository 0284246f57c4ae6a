"""A network service that failed a step for longer than the step waits for it: one clean error that names the
service, raised where the step's caller (the CLI, a component, a test) sees it.

MLflow's HTTP client does the waiting (the bounds are `tracking.HttpRetryPolicy`, set by `setup_tracking`); once
it gives up, its exception says only that "an API request failed". `tracking_step` turns that into
ServiceUnreachable: which server (and whether its S3 was what failed), what it did (refused, 5xx, silence), for how
many tries over how long, and the variables that set those bounds. LeaseExpired is the other outage a step can
meet: it held a registered model's alias lock for longer than the lock trusts it (`alias_lock`), or a later holder
overtook its rollout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from landmarkflow.tracking import HttpRetryPolicy, setup_tracking

P = ParamSpec("P")
R = TypeVar("R")
ARTIFACT_PROXY_PATH = "/mlflow-artifacts/"
"""Where a tracking server serves the artifacts it keeps in S3: a 5xx or silence there is most likely S3's."""


class ServiceUnreachable(ConnectionError):
    """A tracking server (or the S3 behind it) failed every try of one request within our retry bounds."""


class LeaseExpired(TimeoutError):
    """A step lost its hold on a registered model's alias lock (an outage outlasted the lease), so it moved no
    alias: another step may have taken the lock over. Also what its rollout meets where a later holder of the lock
    served its champion since (`serving.kserve`): the later one stays served."""


CLEAN_FAILURES: tuple[type[Exception], ...] = (ServiceUnreachable, LeaseExpired)
"""Errors whose message says all there is to say: an entry point prints them without a traceback."""


def unreachable_service(exc: BaseException) -> ServiceUnreachable | None:
    """The ServiceUnreachable that `exc` means, when it (or an exception it was raised from) is the HTTP client's
    giving up on a request; None for anything else (a 4xx answer, a bug)."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import RetryError, Timeout

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, (RequestsConnectionError, RetryError, Timeout)):
        cause = cause.__cause__ or cause.__context__
    request = getattr(cause, "request", None)
    if cause is None or request is None or not request.url:
        return None
    url = urlsplit(request.url)
    policy = HttpRetryPolicy.from_env()
    reason = _innermost(cause)
    what = _what_failed(reason, policy)
    if what != "unreachable" and ARTIFACT_PROXY_PATH in url.path:
        what += " proxying artifacts to its S3 store"
    bounds = ", ".join(f"{variable}={value}" for variable, value in policy.env().items())
    return ServiceUnreachable(
        f"MLflow tracking server {url.scheme}://{url.netloc} {what} on all {policy.tries} tries over "
        f"{policy.backoff_s():.0f}+ s ({request.method} {url.path}): {reason} [bounds: {bounds}]"
    )


def _innermost(exc: BaseException) -> BaseException:
    """The root reason (e.g. "[Errno 111] Connection refused"), not the wrappings of requests and urllib3."""
    while True:
        reason = getattr(exc, "reason", None) or (exc.args[0] if exc.args else None)
        if not isinstance(reason, BaseException):
            return exc
        exc = reason


def _what_failed(reason: BaseException, policy: HttpRetryPolicy) -> str:
    from urllib3.exceptions import NewConnectionError, ResponseError
    from urllib3.exceptions import TimeoutError as NoAnswer

    if isinstance(reason, ResponseError):
        return "failed (HTTP 5xx)"
    if isinstance(reason, NoAnswer) and not isinstance(reason, NewConnectionError):
        return f"did not answer within {policy.timeout_s} s"
    return "unreachable"


def tracking_step(step: Callable[P, R]) -> Callable[P, R]:
    """For a step that talks to MLflow: set tracking up (store, retry bounds) first, and raise an outage that outlasted
    the retries as ServiceUnreachable."""

    @functools.wraps(step)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        setup_tracking()
        try:
            return step(*args, **kwargs)
        except Exception as exc:
            outage = unreachable_service(exc)
            if outage is None:
                raise
            raise outage from exc

    return run
