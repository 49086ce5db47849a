"""Leadership of scale sets among listener replicas (docs/listener.md: "High availability")."""

from __future__ import annotations

import secrets
from collections import Counter

from gha_scalesets.listener.config import DynamoDBRegistryConfig, ListenerSettings
from gha_scalesets.listener.leadership.base import (
    Lease,
    LeaseStore,
    Member,
    MemoryLeaseStore,
    Terms,
)
from gha_scalesets.listener.leadership.elector import LeaderElector, Takeover

__all__ = [
    "LeaderElector",
    "Lease",
    "LeaseStore",
    "Member",
    "MemoryLeaseStore",
    "Takeover",
    "Terms",
]

# A lease call that takes longer than this is no use: the elector's deadline fences anyway.
_LEASE_READ_TIMEOUT_SECONDS = 3.0


def lease_identity(owner: str) -> str:
    """The owner name plus a per-process suffix: two replicas with one host name (or a
    restarted process) never mistake each other's lease for their own."""
    return f"{owner}#{secrets.token_hex(4)}"


def store_kind(settings: ListenerSettings) -> str:
    """The store ``settings.leadership.store`` names (``auto``: Kubernetes Lease on the k8s
    runtime, else the DynamoDB registry's table, else memory)."""
    store = settings.leadership.store
    if store == "kubernetes" or (store == "auto" and settings.runtime == "k8s"):
        return "kubernetes"
    if isinstance(settings.registry, DynamoDBRegistryConfig) and store in ("auto", "dynamodb"):
        return "dynamodb"
    return "memory"


def build_lease_store(
    settings: ListenerSettings, api_calls: Counter[str] | None = None
) -> LeaseStore:
    """The store of :func:`store_kind`; a DynamoDB one counts its requests in ``api_calls``."""
    registry = settings.registry
    kind = store_kind(settings)
    if kind == "kubernetes":
        from gha_scalesets.listener.leadership.kubernetes import KubernetesLeaseStore

        assert settings.k8s is not None
        return KubernetesLeaseStore(settings.k8s)
    if kind == "dynamodb":
        from gha_scalesets.listener.leadership.dynamodb import DynamoDBLeaseStore
        from gha_scalesets.listener.registry.dynamodb import make_dynamodb_client

        assert isinstance(registry, DynamoDBRegistryConfig)
        client = make_dynamodb_client(
            registry, settings.aws, api_calls, read_timeout=_LEASE_READ_TIMEOUT_SECONDS
        )
        return DynamoDBLeaseStore(registry.table_name, client)
    return MemoryLeaseStore(exclusive=True)  # nobody else can take a lease of this process
