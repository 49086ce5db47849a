"""JIT configs as per-runner SSM SecureString parameters, for the EC2 and ECS runtimes.

The listener writes one parameter per runner (``<prefix>/<scale set id>/<key>``, paced within
Parameter Store's throughput); the runner's boot script (:mod:`~gha_scalesets.contract.boot`)
reads it (retrying for a bounded time: it may boot before the listener wrote it), deletes it and
starts. The listener deletes leftovers on terminate and sweeps the ones nobody consumed during
reconciliation.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import structlog
from botocore.client import BaseClient

from gha_scalesets.contract.names import jit_parameter_path
from gha_scalesets.listener.aws import AWS_ERRORS, call, chunks, error_code
from gha_scalesets.listener.runtimes._pacing import Pacer
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)

_DELETE_BATCH = 10  # DeleteParameters accepts at most 10 names


class JitParameters:
    """Writes, deletes and sweeps the per-runner JIT parameters under one prefix."""

    def __init__(
        self,
        client: BaseClient,
        prefix: str,
        kms_key_id: str | None,
        retry: RetryPolicy,
        pacer: Pacer | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix.rstrip("/")
        self._kms_key_id = kms_key_id
        self._retry = retry
        self._pacer = pacer

    def path(self, scale_set_id: int) -> str:
        """Where the parameters of a scale set's runners are."""
        return jit_parameter_path(self._prefix, scale_set_id)

    def name(self, scale_set_id: int, key: str) -> str:
        """The parameter of one runner (``key``: its instance id on EC2, task id on ECS)."""
        return f"{self.path(scale_set_id)}/{key}"

    async def put(
        self, name: str, jit_config: str, tags: dict[str, str], errors: Counter[str]
    ) -> None:
        """Store ``jit_config`` as a SecureString; raises the AWS error when it cannot."""
        params: dict[str, Any] = {
            "Name": name,
            "Value": jit_config,
            "Type": "SecureString",
            # JIT configs are usually under the 4 KB standard limit; larger ones go advanced.
            "Tier": "Intelligent-Tiering",
        }
        if self._kms_key_id:
            params["KeyId"] = self._kms_key_id
        put = functools.partial(
            call, self._client, "put_parameter", self._retry, errors=errors, pacer=self._pacer
        )
        try:
            await put(Tags=[{"Key": k, "Value": v} for k, v in tags.items()], **params)
        except AWS_ERRORS as exc:
            if error_code(exc) != "ParameterAlreadyExists":
                raise
            # A retried write whose first answer was lost, or a leftover of an earlier
            # attempt: the value must be this runner's (tags cannot go with Overwrite).
            await put(Overwrite=True, **params)

    async def delete(self, names: Iterable[str]) -> None:
        """Delete parameters, ten per call; missing ones are fine, failures are logged."""
        for chunk in chunks(names, _DELETE_BATCH):
            try:
                await call(self._client, "delete_parameters", self._retry, Names=chunk)
            except AWS_ERRORS as exc:
                log.warning(
                    "could not delete JIT parameters", count=len(chunk), error=error_code(exc)
                )

    async def sweep(self, scale_set_id: int, keep: Collection[str], older_than: datetime) -> int:
        """Delete the scale set's parameters whose key is not in ``keep`` and that were last
        written before ``older_than`` (younger ones may belong to a launch in flight).

        Returns how many were deleted.
        """
        path = self.path(scale_set_id)
        stale: list[str] = []
        token: str | None = None
        while True:
            more: dict[str, Any] = {"NextToken": token} if token else {}
            page = await call(
                self._client,
                "describe_parameters",
                self._retry,
                ParameterFilters=[{"Key": "Path", "Option": "OneLevel", "Values": [path]}],
                MaxResults=50,
                **more,
            )
            for param in page.get("Parameters", []):
                key = param["Name"].rsplit("/", 1)[-1]
                if key not in keep and param["LastModifiedDate"] < older_than:
                    stale.append(param["Name"])
            token = page.get("NextToken")
            if not token:
                break
        if stale:
            log.info("unread JIT parameters swept", scale_set_id=scale_set_id, count=len(stale))
            await self.delete(stale)
        return len(stale)
