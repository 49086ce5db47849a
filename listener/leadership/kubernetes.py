"""Leases as ``coordination.k8s.io/v1`` Lease objects in the runner namespace.

One Lease ``gha-listener-<scale set id>`` per scale set: ``holderIdentity``,
``leaseDurationSeconds`` and ``renewTime`` as Kubernetes tools show them; the holder's message
session id in the annotation ``gha-scaleset/session-id``. The version is the object's
``resourceVersion``: a replace with a stale one is refused (409 Conflict), a second create
too (409 AlreadyExists). Standbys read all leases with one list call.

Members are Leases too: ``gha-listener-member-<hash of group and identity>``, labelled
``gha-scalesets/member-group: <group>``, ``holderIdentity`` the replica, the annotation
``gha-scalesets/leading`` its count; a heartbeat replaces the object (unconditionally: only
its replica writes it). The Role's verbs: get, list, create, update, delete.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.leadership.base import Lease, Member, Terms
from gha_scalesets.listener.runtimes.k8s import api_client

ANNOTATION_SESSION_ID = "gha-scaleset/session-id"
ANNOTATION_LEADING = "gha-scalesets/leading"
LABEL_MEMBER_GROUP = "gha-scalesets/member-group"
_MANAGED_BY = {"app.kubernetes.io/managed-by": "gha-scalesets"}
_LEASE_NAME = re.compile(r"gha-listener-(\d+)")
_PAGE = 500


def lease_name(scale_set_id: int) -> str:
    return f"gha-listener-{scale_set_id}"


def member_name(group: str, identity: str) -> str:
    digest = hashlib.sha256(f"{group}/{identity}".encode()).hexdigest()[:16]
    return f"gha-listener-member-{digest}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubernetesLeaseStore:
    """The :class:`~listener.leadership.base.LeaseStore` on the API server."""

    name = "kubernetes"

    def __init__(self, config: K8sRuntimeConfig) -> None:
        self._config = config
        self._namespace = config.namespace
        self._api: client.ApiClient | None = None
        self._leases: client.CoordinationV1Api | None = None
        self._member_versions: dict[str, str] = {}  # resourceVersion of our last beat

    async def _client(self) -> client.CoordinationV1Api:
        if self._leases is None:
            self._api = await api_client(self._config)
            self._leases = client.CoordinationV1Api(self._api)
        return self._leases

    async def read(self, scale_set_id: int) -> Lease | None:
        api = await self._client()
        try:
            found = await api.read_namespaced_lease(lease_name(scale_set_id), self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _lease(found)

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        api = await self._client()
        name = lease_name(scale_set_id)
        spec: dict[str, Any] = {
            "holderIdentity": new.holder,
            "leaseDurationSeconds": math.ceil(new.duration_seconds),
            "renewTime": _now(),
        }
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "labels": _MANAGED_BY,
                "annotations": {ANNOTATION_SESSION_ID: new.session_id} if new.session_id else {},
            },
            "spec": spec,
        }
        try:
            if expected is None:
                written = await api.create_namespaced_lease(self._namespace, body)
            else:
                body["metadata"]["resourceVersion"] = expected.version
                written = await api.replace_namespaced_lease(name, self._namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return None  # AlreadyExists or Conflict: another replica wrote first
            raise
        return _lease(written)

    async def _list(self, selector: str) -> list[client.V1Lease]:
        api = await self._client()
        items: list[client.V1Lease] = []
        token: str | None = None
        while True:
            page = await api.list_namespaced_lease(
                self._namespace, label_selector=selector, limit=_PAGE, _continue=token
            )
            items += page.items
            token = page.metadata._continue
            if not token:
                return items

    async def read_many(self, scale_set_ids: Sequence[int]) -> dict[int, Lease]:
        wanted = set(scale_set_ids)
        found = {}
        managed = ",".join(f"{k}={v}" for k, v in _MANAGED_BY.items())
        for obj in await self._list(f"{managed},!{LABEL_MEMBER_GROUP}"):
            match = _LEASE_NAME.fullmatch(obj.metadata.name)
            if match and int(match.group(1)) in wanted:
                found[int(match.group(1))] = _lease(obj)
        return found

    async def beat(self, group: str, identity: str, leading: int) -> None:
        api = await self._client()
        name = member_name(group, identity)
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "labels": {**_MANAGED_BY, LABEL_MEMBER_GROUP: group},
                "annotations": {ANNOTATION_LEADING: str(leading)},
            },
            "spec": {"holderIdentity": identity, "renewTime": _now()},
        }
        version = self._member_versions.get(name)
        try:
            if version is None:
                written = await api.create_namespaced_lease(self._namespace, body)
            else:
                # A Lease update needs the resourceVersion; only this replica writes this one.
                body["metadata"]["resourceVersion"] = version
                written = await api.replace_namespaced_lease(name, self._namespace, body)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
            # Gone (removed as stale while this process was paused) or not what we last
            # wrote (a restart with the same identity cannot happen: identities are per process).
            self._member_versions.pop(name, None)
            if exc.status == 404:
                written = await api.create_namespaced_lease(self._namespace, body)
            else:
                current = await api.read_namespaced_lease(name, self._namespace)
                body["metadata"]["resourceVersion"] = current.metadata.resource_version
                written = await api.replace_namespaced_lease(name, self._namespace, body)
        self._member_versions[name] = written.metadata.resource_version

    async def members(self, group: str) -> list[Member]:
        return [
            Member(
                obj.spec.holder_identity or "",
                obj.metadata.resource_version,
                int((obj.metadata.annotations or {}).get(ANNOTATION_LEADING, "0")),
            )
            for obj in await self._list(f"{LABEL_MEMBER_GROUP}={group}")
            if obj.spec is not None and obj.spec.holder_identity
        ]

    async def remove_member(self, group: str, identity: str) -> None:
        api = await self._client()
        name = member_name(group, identity)
        self._member_versions.pop(name, None)
        try:
            await api.delete_namespaced_lease(name, self._namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()


def _lease(obj: client.V1Lease) -> Lease:
    spec = obj.spec or client.V1LeaseSpec()
    annotations = obj.metadata.annotations or {}
    return Terms(
        holder=spec.holder_identity or None,
        duration_seconds=float(spec.lease_duration_seconds or 0),
        session_id=annotations.get(ANNOTATION_SESSION_ID),
    ).stored(obj.metadata.resource_version)
