"""Runner registries: in memory, or DynamoDB behind a short TTL count cache."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from gha_scalesets.listener.config import DynamoDBRegistryConfig, ListenerSettings
from gha_scalesets.listener.registry.base import Registry
from gha_scalesets.listener.warm.profile import ProfileStore


def build_registry(
    settings: ListenerSettings,
    on_cache_lookup: Callable[[bool], None] | None = None,
    api_calls: Counter[str] | None = None,
) -> Registry:
    """The registry the settings ask for; a DynamoDB one counts its requests in ``api_calls``."""
    config = settings.registry
    if isinstance(config, DynamoDBRegistryConfig):
        from gha_scalesets.listener.registry.cache import CachedCountRegistry
        from gha_scalesets.listener.registry.dynamodb import DynamoDBRegistry, make_dynamodb_client

        store = DynamoDBRegistry(
            config.table_name,
            make_dynamodb_client(config, settings.aws, api_calls),
            max_concurrency=config.max_concurrency,
        )
        return CachedCountRegistry(store, config.cache_ttl_seconds, on_lookup=on_cache_lookup)
    from gha_scalesets.listener.registry.memory import MemoryRegistry

    # Nothing survives a restart here, so names start at the clock (in ms) to stay unique.
    return MemoryRegistry(first_sequence=int(time.time() * 1000))


def build_profile_store(settings: ListenerSettings, registry: Registry) -> ProfileStore:
    """Where the adaptive warm capacity keeps what it learned: the registry, except on
    Kubernetes with the in-memory registry (the pods are the registry there), where it is a
    ConfigMap, so that a restarted or newly elected listener continues from it."""
    on_pods = settings.runtime == "k8s" and settings.k8s is not None
    if on_pods and not isinstance(settings.registry, DynamoDBRegistryConfig):
        from gha_scalesets.listener.registry.kubernetes import KubernetesProfileStore

        assert settings.k8s is not None
        return KubernetesProfileStore(settings.k8s)
    return registry
