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

import importlib
from typing import TYPE_CHECKING, Any

# Names load on first use: the provider's checks (run by ``pulumi preview``) import the config
# URL, credential and network rules without the HTTP stack that only the client needs.
_EXPORTS = {
    "Client": "client",
    "ConfigUrl": "config_url",
    "Scope": "config_url",
    "parse_config_url": "config_url",
    "AppCredentials": "credentials",
    "Credentials": "credentials",
    "PatCredentials": "credentials",
    "AmbiguousNameError": "errors",
    "ApiError": "errors",
    "ConfigUrlError": "errors",
    "ConflictError": "errors",
    "CredentialsError": "errors",
    "ForbiddenError": "errors",
    "JobStillRunningError": "errors",
    "MessageQueueTokenExpiredError": "errors",
    "NotFoundError": "errors",
    "ProtocolError": "errors",
    "RateLimitedError": "errors",
    "RunnerExistsError": "errors",
    "RunnerGroupNotFoundError": "errors",
    "RunnerNotFoundError": "errors",
    "ScaleSetError": "errors",
    "ScaleSetNotFoundError": "errors",
    "SessionConflictError": "errors",
    "SessionNotFoundError": "errors",
    "TransportError": "errors",
    "UnauthorizedError": "errors",
    "JobAssigned": "messages",
    "JobAvailable": "messages",
    "JobCompleted": "messages",
    "JobMessage": "messages",
    "JobStarted": "messages",
    "ScaleSetMessage": "messages",
    "JitConfigResult": "models",
    "Label": "models",
    "MessageSession": "models",
    "RunnerGroup": "models",
    "RunnerReference": "models",
    "RunnerSetting": "models",
    "ScaleSet": "models",
    "Statistics": "models",
    "PoolSettings": "pool",
    "RetryPolicy": "retry",
    "SyncClient": "sync",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads each name
    from gha_scalesets.scaleset.client import Client as Client
    from gha_scalesets.scaleset.config_url import ConfigUrl as ConfigUrl
    from gha_scalesets.scaleset.config_url import Scope as Scope
    from gha_scalesets.scaleset.config_url import parse_config_url as parse_config_url
    from gha_scalesets.scaleset.credentials import AppCredentials as AppCredentials
    from gha_scalesets.scaleset.credentials import Credentials as Credentials
    from gha_scalesets.scaleset.credentials import PatCredentials as PatCredentials
    from gha_scalesets.scaleset.errors import AmbiguousNameError as AmbiguousNameError
    from gha_scalesets.scaleset.errors import ApiError as ApiError
    from gha_scalesets.scaleset.errors import ConfigUrlError as ConfigUrlError
    from gha_scalesets.scaleset.errors import ConflictError as ConflictError
    from gha_scalesets.scaleset.errors import CredentialsError as CredentialsError
    from gha_scalesets.scaleset.errors import ForbiddenError as ForbiddenError
    from gha_scalesets.scaleset.errors import JobStillRunningError as JobStillRunningError
    from gha_scalesets.scaleset.errors import (
        MessageQueueTokenExpiredError as MessageQueueTokenExpiredError,
    )
    from gha_scalesets.scaleset.errors import NotFoundError as NotFoundError
    from gha_scalesets.scaleset.errors import ProtocolError as ProtocolError
    from gha_scalesets.scaleset.errors import RateLimitedError as RateLimitedError
    from gha_scalesets.scaleset.errors import RunnerExistsError as RunnerExistsError
    from gha_scalesets.scaleset.errors import RunnerGroupNotFoundError as RunnerGroupNotFoundError
    from gha_scalesets.scaleset.errors import RunnerNotFoundError as RunnerNotFoundError
    from gha_scalesets.scaleset.errors import ScaleSetError as ScaleSetError
    from gha_scalesets.scaleset.errors import ScaleSetNotFoundError as ScaleSetNotFoundError
    from gha_scalesets.scaleset.errors import SessionConflictError as SessionConflictError
    from gha_scalesets.scaleset.errors import SessionNotFoundError as SessionNotFoundError
    from gha_scalesets.scaleset.errors import TransportError as TransportError
    from gha_scalesets.scaleset.errors import UnauthorizedError as UnauthorizedError
    from gha_scalesets.scaleset.messages import JobAssigned as JobAssigned
    from gha_scalesets.scaleset.messages import JobAvailable as JobAvailable
    from gha_scalesets.scaleset.messages import JobCompleted as JobCompleted
    from gha_scalesets.scaleset.messages import JobMessage as JobMessage
    from gha_scalesets.scaleset.messages import JobStarted as JobStarted
    from gha_scalesets.scaleset.messages import ScaleSetMessage as ScaleSetMessage
    from gha_scalesets.scaleset.models import JitConfigResult as JitConfigResult
    from gha_scalesets.scaleset.models import Label as Label
    from gha_scalesets.scaleset.models import MessageSession as MessageSession
    from gha_scalesets.scaleset.models import RunnerGroup as RunnerGroup
    from gha_scalesets.scaleset.models import RunnerReference as RunnerReference
    from gha_scalesets.scaleset.models import RunnerSetting as RunnerSetting
    from gha_scalesets.scaleset.models import ScaleSet as ScaleSet
    from gha_scalesets.scaleset.models import Statistics as Statistics
    from gha_scalesets.scaleset.pool import PoolSettings as PoolSettings
    from gha_scalesets.scaleset.retry import RetryPolicy as RetryPolicy
    from gha_scalesets.scaleset.sync import SyncClient as SyncClient


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
