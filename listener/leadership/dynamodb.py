"""Leases as one item per scale set in the DynamoDB registry table.

Item ``pk = "scaleset#<id>"``, ``sk = "lease"``: ``version`` (N, +1 per write), ``holder`` (S,
absent once released), ``duration`` (N, seconds), ``session_id`` (S, optional) and
``updated_at`` (N, epoch seconds, for people reading the table). Every write is one
``PutItem`` conditional on the version read before, so of racing replicas exactly one wins.
Standbys read many leases with ``BatchGetItem`` (100 keys a call, strongly consistent).

Member items: ``pk = "members#<group>"``, ``sk = "member#<identity>"``; ``beat`` (N, +1 per
heartbeat: the version), ``led`` (N: scale sets it leads), ``updated_at`` and ``expires_at``
(N: the table's TTL removes the records of replicas that died, should no other replica remove
them first).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from gha_scalesets.listener.aws import call
from gha_scalesets.listener.leadership.base import Lease, Member, Terms
from gha_scalesets.scaleset.retry import RetryPolicy

# One quick retry at most: the elector's deadline fences a slow lease call anyway.
LEASE_RETRY = RetryPolicy(max_attempts=2, backoff_base=0.2, backoff_max=1.0, deadline=None)

_LEASE_SK = "lease"
_BATCH_KEYS = 100  # BatchGetItem's limit
_MEMBER_TTL_SECONDS = 86_400.0


def _key(scale_set_id: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"scaleset#{scale_set_id}"}, "sk": {"S": _LEASE_SK}}


def _member_key(group: str, identity: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"members#{group}"}, "sk": {"S": f"member#{identity}"}}


def _lease(item: dict[str, Any]) -> Lease:
    return Terms(
        holder=item["holder"]["S"] if "holder" in item else None,
        duration_seconds=float(item["duration"]["N"]),
        session_id=item["session_id"]["S"] if "session_id" in item else None,
    ).stored(item["version"]["N"])


class DynamoDBLeaseStore:
    """The :class:`~listener.leadership.base.LeaseStore` on the registry's table."""

    name = "dynamodb"

    def __init__(
        self, table_name: str, client: BaseClient, retry: RetryPolicy = LEASE_RETRY
    ) -> None:
        self._table = table_name
        self._client = client  # its own: short timeouts, closed with the store
        self._retry = retry

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await call(self._client, operation, self._retry, **kwargs)
        return reply

    async def read(self, scale_set_id: int) -> Lease | None:
        response = await self._call(
            "get_item", TableName=self._table, Key=_key(scale_set_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _lease(item) if item else None

    async def read_many(self, scale_set_ids: Sequence[int]) -> dict[int, Lease]:
        found: dict[int, Lease] = {}
        ids = list(dict.fromkeys(scale_set_ids))
        for start in range(0, len(ids), _BATCH_KEYS):
            keys = [_key(i) for i in ids[start : start + _BATCH_KEYS]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:  # throttled keys come back unprocessed: ask for those again
                response = await self._call("batch_get_item", RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    found[int(item["pk"]["S"].removeprefix("scaleset#"))] = _lease(item)
                request = response.get("UnprocessedKeys") or {}
        return found

    async def beat(self, group: str, identity: str, leading: int) -> None:
        now = time.time()
        await self._call(
            "update_item",
            TableName=self._table,
            Key=_member_key(group, identity),
            UpdateExpression="ADD beat :one SET led = :led, updated_at = :now, "
            "expires_at = :expires",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":led": {"N": str(leading)},
                ":now": {"N": str(int(now))},
                ":expires": {"N": str(int(now + _MEMBER_TTL_SECONDS))},
            },
        )

    async def members(self, group: str) -> list[Member]:
        found: list[Member] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"members#{group}"}},
            "ConsistentRead": True,
        }
        while True:
            response = await self._call("query", **query)
            found += [
                Member(
                    item["sk"]["S"].removeprefix("member#"),
                    item["beat"]["N"],
                    int(item["led"]["N"]),
                )
                for item in response.get("Items", [])
            ]
            if "LastEvaluatedKey" not in response:
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def remove_member(self, group: str, identity: str) -> None:
        await self._call("delete_item", TableName=self._table, Key=_member_key(group, identity))

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        version = str(int(expected.version) + 1 if expected else 1)
        item: dict[str, Any] = {
            **_key(scale_set_id),
            "version": {"N": version},
            "duration": {"N": str(new.duration_seconds)},
            "updated_at": {"N": str(int(time.time()))},
        }
        if new.holder is not None:
            item["holder"] = {"S": new.holder}
        if new.session_id is not None:
            item["session_id"] = {"S": new.session_id}
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(sk)"}
            if expected is None
            else {
                "ConditionExpression": "version = :seen",
                "ExpressionAttributeValues": {":seen": {"N": expected.version}},
            }
        )
        try:
            await self._call("put_item", TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return new.stored(version)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
