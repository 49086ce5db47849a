"""Registry in one DynamoDB table, so a restarted listener knows its runners and its count.

Table schema (the Pulumi component creates the same table from the same names,
:mod:`~gha_scalesets.contract.names`):

- partition key ``pk`` (S), sort key ``sk`` (S), on-demand billing, TTL on ``expires_at`` (N).
- count item: ``pk = "scaleset#<id>"``, ``sk = "count"``; ``count`` (N) = counted runners, moved
  only inside transactions that also put/delete a runner item (so it always equals the number of
  runner items), and ``sequence`` (N) = the last runner-name sequence handed out (atomic ``ADD``).
- runner item: ``pk = "scaleset#<id>"``, ``sk = "runner#<name>"``; ``state``, ``runner_id``,
  ``provider_id``, ``job_id``, ``created_at``, ``updated_at`` (N, epoch seconds), ``expires_at``.
- demand-profile item: ``pk = "scaleset#<id>"``, ``sk = "demand-profile"``; ``profile`` (S, the
  JSON of :class:`~listener.warm.profile.DemandProfile`), ``updated_at``: what the adaptive
  warm-capacity policy learned, kept across restarts and takeovers (no TTL).
- provider item: ``pk = "provider#<provider id>"``, ``sk = "provider"``; ``scale_set_id``,
  ``runner_name``, ``expires_at``: the lookup of runtime events (instance/task/pod id -> runner)
  without a secondary index.

Runner and provider items expire (TTL, refreshed on every update) only as a safety net against
garbage; reconciliation releases runners long before that.

Calls go through :func:`~listener.aws.call` (a worker thread each, throttling and 5xx retried
with backoff, every request counted).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from gha_scalesets.contract.names import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from gha_scalesets.listener.aws import call, error_code, make_client
from gha_scalesets.listener.config import AwsConfig, DynamoDBRegistryConfig
from gha_scalesets.listener.registry.base import (
    RunnerRecord,
    RunnerState,
    UnknownRunnerError,
    check_changes,
)
from gha_scalesets.listener.retries import default_retry
from gha_scalesets.scaleset.retry import RetryPolicy

DEFAULT_ITEM_TTL_SECONDS = 7 * 24 * 3600  # self-hosted jobs may run up to 5 days
_COUNT_SK = "count"
_PROVIDER_SK = "provider"
_PROFILE_SK = "demand-profile"
_MAX_TRANSACTION_ITEMS = 100
_RESERVE_ATTEMPTS = 8


def _pk(scale_set_id: int) -> dict[str, str]:
    return {"S": f"scaleset#{scale_set_id}"}


def _key(partition: dict[str, str], sort: str) -> dict[str, dict[str, str]]:
    return {PARTITION_KEY: partition, SORT_KEY: {"S": sort}}


def _runner_key(scale_set_id: int, name: str) -> dict[str, dict[str, str]]:
    return _key(_pk(scale_set_id), f"runner#{name}")


def _count_key(scale_set_id: int) -> dict[str, dict[str, str]]:
    return _key(_pk(scale_set_id), _COUNT_SK)


def _provider_key(provider_id: str) -> dict[str, dict[str, str]]:
    return _key({"S": f"provider#{provider_id}"}, _PROVIDER_SK)


def _num(value: float | int) -> dict[str, str]:
    return {"N": str(value)}


def _to_attr(value: object) -> dict[str, str]:
    if isinstance(value, RunnerState):
        return {"S": value.value}
    if isinstance(value, int | float):
        return _num(value)
    return {"S": str(value)}


def _record(item: dict[str, Any]) -> RunnerRecord:
    def text(key: str) -> str | None:
        return item[key]["S"] if key in item else None

    def number(key: str) -> float | None:
        return float(item[key]["N"]) if key in item else None

    runner_id = number("runner_id")
    return RunnerRecord(
        scale_set_id=int(item[PARTITION_KEY]["S"].removeprefix("scaleset#")),
        runner_name=item[SORT_KEY]["S"].removeprefix("runner#"),
        state=RunnerState(item["state"]["S"]),
        runner_id=int(runner_id) if runner_id is not None else None,
        provider_id=text("provider_id"),
        job_id=text("job_id"),
        created_at=number("created_at") or 0.0,
        updated_at=number("updated_at") or 0.0,
        expires_at=number(TTL_ATTRIBUTE),
    )


def _cancel_reasons(exc: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def make_dynamodb_client(
    config: DynamoDBRegistryConfig,
    aws: AwsConfig,
    api_calls: Counter[str] | None = None,
    *,
    read_timeout: float = 10,
) -> BaseClient:
    """A DynamoDB client for the registry's table (region and endpoint from the registry
    section, else ``aws``, else the SDK default), counting its requests in ``api_calls``.

    DynamoDB answers in milliseconds: a hung connection must not stall the scaler.
    """
    where = AwsConfig(
        region=config.region or aws.region, endpoint_url=config.endpoint_url or aws.endpoint_url
    )
    return make_client(
        "dynamodb",
        where,
        Counter() if api_calls is None else api_calls,
        max_connections=config.max_concurrency,
        connect_timeout=min(5, read_timeout),
        read_timeout=read_timeout,
    )


def create_table(client: BaseClient, table_name: str) -> None:
    """Create the registry table with the schema above (local runs and tests; Pulumi in AWS)."""
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


class RegistryConflictError(Exception):
    """Conditional writes kept conflicting with another writer of the same scale set."""


class DynamoDBRegistry:
    """The :class:`~listener.registry.base.Registry` on DynamoDB with conditional transactions."""

    def __init__(
        self,
        table_name: str,
        client: BaseClient,
        *,
        clock: Callable[[], float] = time.time,
        item_ttl_seconds: float = DEFAULT_ITEM_TTL_SECONDS,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._table = table_name
        self._client = client
        self._clock = clock
        self._item_ttl = item_ttl_seconds
        self._locks: dict[int, asyncio.Lock] = {}
        self._requests = asyncio.Semaphore(max_concurrency)
        self._retry = retry or default_retry()

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        async with self._requests:  # each request holds a worker thread
            reply: dict[str, Any] = await call(self._client, operation, self._retry, **kwargs)
            return reply

    def _expiry(self, now: float) -> dict[str, str]:
        return _num(int(now + self._item_ttl))

    async def count(self, scale_set_id: int) -> int:
        response = await self._call(
            "get_item", TableName=self._table, Key=_count_key(scale_set_id), ConsistentRead=True
        )
        return int(response.get("Item", {}).get("count", {"N": "0"})["N"])

    def _count_lock(self, scale_set_id: int) -> asyncio.Lock:
        # Transactions on one count item conflict with each other (TransactionConflict):
        # this process, the item's only regular writer, sends them one at a time.
        return self._locks.setdefault(scale_set_id, asyncio.Lock())

    async def reserve(self, scale_set_id: int, names: list[str], max_runners: int) -> list[str]:
        granted: list[str] = []
        async with self._count_lock(scale_set_id):
            for chunk in _chunks(list(dict.fromkeys(names)), _MAX_TRANSACTION_ITEMS - 1):
                taken = await self._reserve_chunk(scale_set_id, chunk, max_runners)
                granted += taken
                if len(taken) < len(chunk):
                    break
        return granted

    async def _reserve_chunk(
        self, scale_set_id: int, names: list[str], max_runners: int
    ) -> list[str]:
        """Count and put as many of ``names`` as fit, in one transaction (retried on races)."""
        candidates = list(names)
        for _ in range(_RESERVE_ATTEMPTS):
            room = max_runners - await self.count(scale_set_id)
            take = candidates[: max(0, room)]
            if not take:
                return []
            now = self._clock()
            puts = [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **_runner_key(scale_set_id, name),
                            "state": {"S": RunnerState.RESERVED.value},
                            "created_at": _num(now),
                            "updated_at": _num(now),
                            TTL_ATTRIBUTE: self._expiry(now),
                        },
                        "ConditionExpression": f"attribute_not_exists({SORT_KEY})",
                    }
                }
                for name in take
            ]
            count_update = {
                "Update": {
                    "TableName": self._table,
                    "Key": _count_key(scale_set_id),
                    "UpdateExpression": "ADD #c :n",
                    # The condition is what keeps the count <= max across writers and restarts.
                    "ConditionExpression": "attribute_not_exists(#c) OR #c <= :limit",
                    "ExpressionAttributeNames": {"#c": "count"},
                    "ExpressionAttributeValues": {
                        ":n": _num(len(take)),
                        ":limit": _num(max_runners - len(take)),
                    },
                }
            }
            try:
                await self._call("transact_write_items", TransactItems=[count_update, *puts])
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = _cancel_reasons(exc)
                existing = {
                    name
                    for name, reason in zip(take, reasons[1:], strict=False)
                    if reason == "ConditionalCheckFailed"
                }
                candidates = [n for n in candidates if n not in existing]
                continue  # the count moved under us, or some names already exist: re-read
            return take
        return []

    async def update(self, scale_set_id: int, runner_name: str, **changes: object) -> None:
        check_changes(changes)
        now = self._clock()
        values: dict[str, dict[str, str]] = {":now": _num(now), ":exp": self._expiry(now)}
        names: dict[str, str] = {}
        sets = ["updated_at = :now", f"{TTL_ATTRIBUTE} = :exp"]
        removes = []
        for i, (field, value) in enumerate(changes.items()):
            names[f"#f{i}"] = field
            if value is None:
                removes.append(f"#f{i}")
            else:
                values[f":v{i}"] = _to_attr(value)
                sets.append(f"#f{i} = :v{i}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _runner_key(scale_set_id, runner_name),
                    "UpdateExpression": expression,
                    "ConditionExpression": f"attribute_exists({SORT_KEY})",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        provider_id = changes.get("provider_id")
        if provider_id is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **_provider_key(str(provider_id)),
                            "scale_set_id": _num(scale_set_id),
                            "runner_name": {"S": runner_name},
                            TTL_ATTRIBUTE: self._expiry(now),
                        },
                    }
                }
            )
        try:
            await self._call("transact_write_items", TransactItems=items)
        except ClientError as exc:
            if _cancel_reasons(exc)[:1] == ["ConditionalCheckFailed"]:
                raise UnknownRunnerError(runner_name) from None
            raise

    async def release(self, scale_set_id: int, runner_name: str) -> bool:
        record = await self.get(scale_set_id, runner_name)
        if record is None:
            return False
        delete_runner = {
            "Delete": {
                "TableName": self._table,
                "Key": _runner_key(scale_set_id, runner_name),
                "ConditionExpression": f"attribute_exists({SORT_KEY})",
            }
        }
        uncount = {
            "Update": {
                "TableName": self._table,
                "Key": _count_key(scale_set_id),
                "UpdateExpression": "ADD #c :minus",
                "ConditionExpression": "#c >= :one",
                "ExpressionAttributeNames": {"#c": "count"},
                "ExpressionAttributeValues": {":minus": _num(-1), ":one": _num(1)},
            }
        }
        extra = (
            [{"Delete": {"TableName": self._table, "Key": _provider_key(record.provider_id)}}]
            if record.provider_id
            else []
        )
        async with self._count_lock(scale_set_id):
            for _ in range(_RESERVE_ATTEMPTS):
                try:
                    await self._call(
                        "transact_write_items", TransactItems=[delete_runner, uncount, *extra]
                    )
                except ClientError as exc:
                    reasons = _cancel_reasons(exc)
                    if not reasons:
                        raise
                    if reasons[0] == "ConditionalCheckFailed":
                        return False  # released concurrently (a runtime event and a job message)
                    if reasons[1] == "ConditionalCheckFailed":
                        # The count is already 0 (a store edited by hand): never go negative.
                        await self._call(
                            "transact_write_items", TransactItems=[delete_runner, *extra]
                        )
                        return True
                    continue  # TransactionConflict with another writer: try again
                return True
        raise RegistryConflictError(
            f"could not release runner {runner_name}: writes kept conflicting"
        )

    async def get(self, scale_set_id: int, runner_name: str) -> RunnerRecord | None:
        response = await self._call(
            "get_item",
            TableName=self._table,
            Key=_runner_key(scale_set_id, runner_name),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _record(item) if item else None

    async def find_by_provider_id(self, provider_id: str) -> RunnerRecord | None:
        response = await self._call(
            "get_item", TableName=self._table, Key=_provider_key(provider_id), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        record = await self.get(int(item["scale_set_id"]["N"]), item["runner_name"]["S"])
        return record if record and record.provider_id == provider_id else None

    async def list(self, scale_set_id: int) -> list[RunnerRecord]:
        records: list[RunnerRecord] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"{PARTITION_KEY} = :pk AND begins_with({SORT_KEY}, :runner)",
            "ExpressionAttributeValues": {":pk": _pk(scale_set_id), ":runner": {"S": "runner#"}},
            "ConsistentRead": True,
        }
        while True:
            response = await self._call("query", **query)
            records += [_record(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return records
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def repair_count(self, scale_set_id: int) -> int:
        async with self._count_lock(scale_set_id):
            items = len(await self.list(scale_set_id))
            stored = await self.count(scale_set_id)
            if items == stored:
                return 0
            try:
                await self._call(
                    "update_item",
                    TableName=self._table,
                    Key=_count_key(scale_set_id),
                    UpdateExpression="SET #c = :items",
                    ConditionExpression="attribute_not_exists(#c) OR #c = :stored",
                    ExpressionAttributeNames={"#c": "count"},
                    ExpressionAttributeValues={":items": _num(items), ":stored": _num(stored)},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return 0  # another writer moved it meanwhile: the next round looks again
                raise
            return items - stored

    async def next_sequence(self, scale_set_id: int, n: int) -> int:
        response = await self._call(
            "update_item",
            TableName=self._table,
            Key=_count_key(scale_set_id),
            UpdateExpression="ADD #s :n",
            ExpressionAttributeNames={"#s": "sequence"},
            ExpressionAttributeValues={":n": _num(n)},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["sequence"]["N"]) - n + 1

    async def load_profile(self, scale_set_id: int) -> dict[str, Any] | None:
        key = _key(_pk(scale_set_id), _PROFILE_SK)
        response = await self._call("get_item", TableName=self._table, Key=key)
        item = response.get("Item")
        return json.loads(item["profile"]["S"]) if item else None

    async def save_profile(self, scale_set_id: int, profile: dict[str, Any]) -> None:
        item = {
            **_key(_pk(scale_set_id), _PROFILE_SK),
            "profile": {"S": json.dumps(profile, separators=(",", ":"))},
            "updated_at": _num(int(self._clock())),
        }
        await self._call("put_item", TableName=self._table, Item=item)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
