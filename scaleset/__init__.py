"""Async client for GitHub's runner scale-set API (with a small synchronous facade).

    async with Client("https://github.com/acme", PatCredentials(pat)) as client:
        group = await client.get_runner_group_by_name("Default")
        scale_set = await client.create_scale_set(name="linux-x64", runner_group_id=group.id)
        batch = await client.generate_jit_configs(scale_set.id, names, concurrency=32)

Tokens are cached per (config URL, credential) for the whole process and renewed before they
expire; retries, typed errors and the wire contract live below this facade.
"""

if __name__ != "gha_scalesets.scaleset":  # one module, one name: never a top-level "scaleset"
    raise ImportError(f"{__name__!r} is gha_scalesets.scaleset: import it by that name")

from gha_scalesets.scaleset.client import Client
from gha_scalesets.scaleset.config_url import ConfigUrl, Scope, parse_config_url
from gha_scalesets.scaleset.credentials import AppCredentials, Credentials, PatCredentials
from gha_scalesets.scaleset.errors import (
    AmbiguousNameError,
    ApiError,
    ConfigUrlError,
    ConflictError,
    CredentialsError,
    ForbiddenError,
    JobStillRunningError,
    MessageQueueTokenExpiredError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RunnerExistsError,
    RunnerGroupNotFoundError,
    RunnerNotFoundError,
    ScaleSetError,
    ScaleSetNotFoundError,
    SessionConflictError,
    SessionNotFoundError,
    TransportError,
    UnauthorizedError,
)
from gha_scalesets.scaleset.messages import (
    JobAssigned,
    JobAvailable,
    JobCompleted,
    JobMessage,
    JobStarted,
    ScaleSetMessage,
)
from gha_scalesets.scaleset.models import (
    JitConfigResult,
    Label,
    MessageSession,
    RunnerGroup,
    RunnerReference,
    RunnerSetting,
    ScaleSet,
    Statistics,
)
from gha_scalesets.scaleset.pool import PoolSettings
from gha_scalesets.scaleset.retry import RetryPolicy
from gha_scalesets.scaleset.sync import SyncClient

__all__ = [
    "AmbiguousNameError",
    "ApiError",
    "AppCredentials",
    "Client",
    "ConfigUrl",
    "ConfigUrlError",
    "ConflictError",
    "Credentials",
    "CredentialsError",
    "ForbiddenError",
    "JitConfigResult",
    "JobAssigned",
    "JobAvailable",
    "JobCompleted",
    "JobMessage",
    "JobStarted",
    "JobStillRunningError",
    "Label",
    "MessageQueueTokenExpiredError",
    "MessageSession",
    "NotFoundError",
    "PatCredentials",
    "PoolSettings",
    "ProtocolError",
    "RateLimitedError",
    "RetryPolicy",
    "RunnerExistsError",
    "RunnerGroup",
    "RunnerGroupNotFoundError",
    "RunnerNotFoundError",
    "RunnerReference",
    "RunnerSetting",
    "ScaleSet",
    "ScaleSetError",
    "ScaleSetMessage",
    "ScaleSetNotFoundError",
    "Scope",
    "SessionConflictError",
    "SessionNotFoundError",
    "Statistics",
    "SyncClient",
    "TransportError",
    "UnauthorizedError",
    "parse_config_url",
]
