"""Demand profiles on Kubernetes, where the API server is the registry: one ConfigMap per
scale set, ``gha-listener-demand-<scale set id>``, its ``profile.json`` the learned profile.

The runner registry itself is the pods (the k8s runtime lists and watches them); only what
the adaptive warm-capacity policy learned needs an object of its own to survive a restart.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.runtimes.k8s import api_client

DATA_KEY = "profile.json"
_MANAGED_BY = {"app.kubernetes.io/managed-by": "gha-scalesets"}


def config_map_name(scale_set_id: int) -> str:
    return f"gha-listener-demand-{scale_set_id}"


class KubernetesProfileStore:
    """A :class:`~listener.warm.profile.ProfileStore` of ConfigMaps in the runner namespace."""

    def __init__(self, config: K8sRuntimeConfig) -> None:
        self._config = config
        self._api: client.ApiClient | None = None
        self._core: client.CoreV1Api | None = None

    async def _client(self) -> client.CoreV1Api:
        if self._core is None:
            self._api = await api_client(self._config)
            self._core = client.CoreV1Api(self._api)
        return self._core

    async def load_profile(self, scale_set_id: int) -> dict[str, Any] | None:
        core = await self._client()
        try:
            found = await core.read_namespaced_config_map(
                config_map_name(scale_set_id), self._config.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        text = (found.data or {}).get(DATA_KEY)
        return json.loads(text) if text else None

    async def save_profile(self, scale_set_id: int, profile: dict[str, Any]) -> None:
        core = await self._client()
        name, namespace = config_map_name(scale_set_id), self._config.namespace
        data = {DATA_KEY: json.dumps(profile, separators=(",", ":"))}
        try:
            await core.patch_namespaced_config_map(name, namespace, {"data": data})
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": _MANAGED_BY},
                "data": data,
            }
            await core.create_namespaced_config_map(namespace, body)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
