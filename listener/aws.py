"""The listener's one way to AWS: clients, the call wrapper and what AWS's errors mean.

Every AWS client of the listener (runtimes, DynamoDB registry and leases, Secrets Manager
credentials, CloudWatch metrics) comes from :func:`make_client`: SDK retries are off, so each
HTTP request is counted once (``service:Operation`` in the caller's counter), and :func:`call`
retries throttling, 5xx and lost connections itself, with full-jitter backoff and, given a
:class:`~listener.runtimes._pacing.Pacer`, within AWS's rate limits. boto3 is synchronous:
every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointError

from gha_scalesets.listener.config import AwsConfig
from gha_scalesets.listener.retries import with_retries
from gha_scalesets.scaleset.retry import RetryPolicy

if TYPE_CHECKING:
    from gha_scalesets.listener.runtimes._pacing import Pacer

AWS_ERRORS = (ClientError, BotoCoreError)
"""What a failed :func:`call` raises: an AWS answer, or no answer at all."""

# Error codes that a later attempt of the same request may not get.
THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyUpdates",
        "ProvisionedThroughputExceededException",  # DynamoDB
        "SlowDown",
    }
)
_SERVER_ERROR_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
CONNECTION_ERROR = "ConnectionError"

T = TypeVar("T")

_session_lock = threading.Lock()


@functools.cache
def session() -> boto3.session.Session:
    """One session per process: it caches service models (a new one re-reads EC2's model,
    most of a second) and credentials (refreshable ones renew themselves)."""
    return boto3.session.Session()


def make_client(
    service: str,
    aws: AwsConfig,
    api_calls: Counter[str],
    *,
    max_connections: int = 10,
    connect_timeout: float = 60,
    read_timeout: float = 60,
) -> BaseClient:
    """A client for ``service`` without SDK retries whose every HTTP request is counted in
    ``api_calls`` as ``service:Operation``. Short timeouts suit services that answer in
    milliseconds (DynamoDB), where a hung connection must not stall the caller."""
    with _session_lock:  # creating clients from one session is not thread-safe
        client = session().client(
            service,
            region_name=aws.region,
            endpoint_url=aws.endpoint_url,  # None: AWS_ENDPOINT_URL or the public endpoint
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                max_pool_connections=max_connections,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            ),
        )

    def count(event_name: str, **_details: Any) -> None:
        _, service_id, operation = event_name.split(".", 2)
        api_calls[f"{service_id}:{operation}"] += 1

    client.meta.events.register("before-send", count)  # this client's emitter only
    return client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a failed call (``ConnectionError`` when no answer came back)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "Unknown")
    if isinstance(exc, EndpointError | HTTPClientError):
        return CONNECTION_ERROR
    return type(exc).__name__  # local SDK errors: credentials, parameter validation


def error_message(exc: BaseException) -> str:
    """``Code: message`` of a failed call, short enough for a log line or a metric label."""
    code = error_code(exc)
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message") or "")
        return f"{code}: {message}"[:300] if message else code
    return code


def is_throttling(code: str) -> bool:
    """Whether AWS refused the request for a rate limit (the caller should slow down)."""
    return code in THROTTLING_CODES


def is_transient(code: str) -> bool:
    """Whether the same request may succeed when sent again later."""
    return is_throttling(code) or code in _SERVER_ERROR_CODES or code == CONNECTION_ERROR


def _worth_retrying(exc: BaseException) -> bool:
    code = error_code(exc)
    # A 5xx with an AWS error code (InsufficientInstanceCapacity) is an answer, not a glitch;
    # one without (a bare "500" from a proxy or load balancer) is worth another try.
    return is_transient(code) or (code.isdigit() and code.startswith("5"))


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (batch APIs cap their input)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def api_name(client: BaseClient, operation: str) -> str:
    """``service:Operation`` of a client method as ``api_calls`` counts it: ``ec2:RunInstances``."""
    service = client.meta.service_model.service_id.hyphenize()
    return f"{service}:{client.meta.method_to_api_mapping[operation]}"


async def call(
    client: BaseClient,
    operation: str,
    retry: RetryPolicy,
    *,
    errors: Counter[str] | None = None,
    pacer: Pacer | None = None,
    resources: int = 0,
    **params: Any,
) -> Any:
    """Call ``operation`` (snake_case) in a thread; retry throttling and 5xx with backoff.

    With a ``pacer`` every attempt first waits for the operation's rate limit (``resources``:
    the instances or tasks it starts or stops), and throttling answers slow the pacer down.
    Every failed attempt is counted by error code in ``errors`` when given. Raises the last
    error of :data:`AWS_ERRORS` when the attempts run out or the error is not transient.
    """
    method = getattr(client, operation)
    name = api_name(client, operation)

    async def send() -> Any:
        if pacer is not None:
            await pacer.acquire(name, resources)
        reply = await asyncio.to_thread(method, **params)
        if pacer is not None:
            pacer.on_success(name)
        return reply

    def count(exc: BaseException) -> None:
        code = error_code(exc)
        if errors is not None:
            errors[code] += 1
        if pacer is not None and is_throttling(code):
            pacer.on_throttled(name)

    return await with_retries(
        send, retry, failures=AWS_ERRORS, transient=_worth_retrying, on_failure=count
    )
