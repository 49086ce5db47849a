"""JIT configs as per-runner SSM SecureString parameters, for the EC2 and ECS runtimes.

The listener writes one parameter per runner (``<prefix>/<scale set id>/<key>``, paced within
Parameter Store's throughput); the runner reads it at boot (retrying for a bounded time: it may
boot before the listener wrote it), deletes it and starts. The listener deletes leftovers on
terminate and sweeps the ones nobody consumed during reconciliation.
"""

from __future__ import annotations

import functools
import shlex
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import datetime

import structlog
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from gha_scalesets.listener.runtimes._aws import call, chunks, error_code
from gha_scalesets.listener.runtimes._pacing import Pacer
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)

JIT_ENV = "ACTIONS_RUNNER_INPUT_JITCONFIG"  # the actions runner reads --jitconfig from here
_DELETE_BATCH = 10  # DeleteParameters accepts at most 10 names
# The runner's read: attempts, and the longest full-jitter wait between two (about 3 minutes
# at most in all, 1.5 on average), before it gives up and the machine powers off.
JIT_READ_ATTEMPTS = 10
JIT_READ_MAX_WAIT_SECONDS = 30


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
        return f"{self._prefix}/{scale_set_id}"

    def name(self, scale_set_id: int, key: str) -> str:
        """The parameter of one runner (``key``: its instance id on EC2, task id on ECS)."""
        return f"{self.path(scale_set_id)}/{key}"

    async def put(
        self, name: str, jit_config: str, tags: dict[str, str], errors: Counter[str]
    ) -> None:
        """Store ``jit_config`` as a SecureString; raises the AWS error when it cannot."""
        params: dict[str, object] = {
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
        except ClientError as exc:
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
            except (ClientError, BotoCoreError) as exc:
                log.warning("jit_parameter_delete_failed", count=len(chunk), error=error_code(exc))

    async def sweep(self, scale_set_id: int, keep: Collection[str], older_than: datetime) -> int:
        """Delete the scale set's parameters whose key is not in ``keep`` and that were last
        written before ``older_than`` (younger ones may belong to a launch in flight).

        Returns how many were deleted.
        """
        path = self.path(scale_set_id)
        stale: list[str] = []
        token: str | None = None
        while True:
            page = await call(
                self._client,
                "describe_parameters",
                self._retry,
                ParameterFilters=[{"Key": "Path", "Option": "OneLevel", "Values": [path]}],
                MaxResults=50,
                **({"NextToken": token} if token else {}),
            )
            for param in page.get("Parameters", []):
                key = param["Name"].rsplit("/", 1)[-1]
                if key not in keep and param["LastModifiedDate"] < older_than:
                    stale.append(param["Name"])
            token = page.get("NextToken")
            if not token:
                break
        if stale:
            log.info("jit_parameters_swept", scale_set_id=scale_set_id, count=len(stale))
            await self.delete(stale)
        return len(stale)


def jit_fetch_script(parameter: str, region: str | None) -> str:
    """Shell lines that read the JIT parameter named by the shell expression ``parameter``
    (e.g. ``"$PARAM"``), delete it and export it for the runner; they never print it.

    The read is retried with full-jitter backoff (``JIT_READ_ATTEMPTS`` attempts, at most
    ``JIT_READ_MAX_WAIT_SECONDS`` apart): a fast boot can race the listener's write, and a
    burst of boots shares Parameter Store's throughput. Then the script fails (``set -e``).
    Expects ``set +x`` and ``set -e`` in force and the AWS CLI on the PATH.
    """
    region_arg = f" --region {shlex.quote(region)}" if region else ""
    return (
        "JIT_ATTEMPT=1\n"
        f"until JIT_CONFIG=$(aws ssm get-parameter{region_arg} --with-decryption"
        f' --name "{parameter}" --query Parameter.Value --output text); do\n'
        f'  if [ "$JIT_ATTEMPT" -ge {JIT_READ_ATTEMPTS} ]; then\n'
        f'    echo "error: no JIT config in {parameter} after {JIT_READ_ATTEMPTS} attempts" >&2\n'
        "    exit 1\n"
        "  fi\n"
        f"  JIT_CAP=$(( 1 << JIT_ATTEMPT > {JIT_READ_MAX_WAIT_SECONDS}"
        f" ? {JIT_READ_MAX_WAIT_SECONDS} : 1 << JIT_ATTEMPT ))\n"
        '  sleep "$(( RANDOM % JIT_CAP + 1 ))"\n'
        "  JIT_ATTEMPT=$(( JIT_ATTEMPT + 1 ))\n"
        "done\n"
        f'aws ssm delete-parameter{region_arg} --name "{parameter}" >/dev/null'
        ' || echo "warning: could not delete the JIT config parameter" >&2\n'
        f'export {JIT_ENV}="$JIT_CONFIG"\n'
        "unset JIT_CONFIG\n"
    )
