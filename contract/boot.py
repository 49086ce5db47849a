"""The scripts runners start with on AWS: they read the JIT config the listener stored.

The component puts them in the runner launch template (:func:`runner_user_data`, EC2) and the
runner task definition (:func:`runner_entrypoint`, ECS); the listener writes each runner's JIT
config to the SSM parameter they read (``<prefix>/<scale set id>/<instance or task id>``), tags
it (:mod:`~gha_scalesets.contract.names`) and sets what they expect in their environment.
Tracing is off in every script, so a JIT config never reaches a console or log.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from gha_scalesets.contract.names import (
    BUNDLE_FILE,
    CA_FILE,
    CA_PEM_ENV,
    JIT_CONFIG_ENV,
    JIT_PARAMETER_PATH_ENV,
    RUNNER_CA_DIR,
    TAG_SCALE_SET_ID,
)
from gha_scalesets.contract.network import ca_environment

# The runner's read: attempts, and the longest full-jitter wait between two (about 3 minutes
# at most in all, 1.5 on average), before it gives up and the machine powers off.
JIT_READ_ATTEMPTS = 10
JIT_READ_MAX_WAIT_SECONDS = 30
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


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
        f'export {JIT_CONFIG_ENV}="$JIT_CONFIG"\n'
        "unset JIT_CONFIG\n"
    )


def ca_setup_script(directory: str) -> str:
    """Shell lines for a runner's boot script: if ``$GHA_SCALESETS_CA_PEM`` is set, write it to
    ``directory/ca.pem`` and, after the system trust store, to ``directory/bundle.pem``, then
    export :func:`~gha_scalesets.contract.network.ca_environment` for them. ``directory`` is a
    shell word (``"$HOME/ca"``)."""
    systems = " ".join(_SYSTEM_BUNDLES)
    exports = " ".join(f'{name}="{value}"' for name, value in ca_environment("$CA_DIR").items())
    return (
        f'if [ -n "${{{CA_PEM_ENV}:-}}" ]; then\n'
        f"  CA_DIR={directory}\n"
        '  mkdir -p "$CA_DIR"\n'
        f'  printf \'%s\\n\' "${CA_PEM_ENV}" > "$CA_DIR/{CA_FILE}"\n'
        "  SYSTEM_CA=\n"
        f'  for f in {systems}; do [ -f "$f" ] && {{ SYSTEM_CA=$f; break; }}; done\n'
        f'  cat ${{SYSTEM_CA:+"$SYSTEM_CA"}} "$CA_DIR/{CA_FILE}" > "$CA_DIR/{BUNDLE_FILE}"\n'
        f"  export {exports}\n"
        f"  unset {CA_PEM_ENV}\n"
        "fi\n"
    )


def runner_boot_lines(
    env: Mapping[str, str], ca_pem: str | None, ca_dir: str = RUNNER_CA_DIR
) -> str:
    """Shell lines for a boot script that carries the network settings itself (EC2 user data):
    export ``env`` and, given a CA, write and trust it under ``ca_dir``."""
    lines = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items()))
    if ca_pem:
        lines += (
            f"{CA_PEM_ENV}=$(cat <<'GHA_SCALESETS_CA'\n{ca_pem.strip()}\nGHA_SCALESETS_CA\n)\n"
            + ca_setup_script(shlex.quote(ca_dir))
        )
    return lines


def runner_user_data(
    ssm_prefix: str,
    region: str,
    *,
    runner_dir: str = "/opt/actions-runner",
    runner_user: str = "runner",
    network_env: Mapping[str, str] | None = None,
    ca_pem: str | None = None,
    ca_dir: str = RUNNER_CA_DIR,
) -> str:
    """The instance bootstrap for the runner launch template (cloud-init runs it as root).

    It reads the instance id and the ``gha-scaleset-id`` tag from IMDSv2, fetches and deletes
    ``<ssm_prefix>/<scale set id>/<instance id>``, runs one ephemeral runner as
    ``runner_user`` from ``runner_dir`` and powers off (the instance then terminates), also
    when any step fails. Needs curl, the AWS CLI and an unpacked actions-runner in the image.
    ``network_env`` (the proxy variables) and ``ca_pem`` (a private CA, written to ``ca_dir``)
    apply to every step and to the runner.
    """
    prefix = shlex.quote(ssm_prefix.rstrip("/"))
    return (
        "#!/bin/bash\n"
        "# gha-scalesets runner bootstrap: one ephemeral runner, then power off.\n"
        "set +x\n"
        "set -euo pipefail\n"
        "trap 'shutdown -h now' EXIT\n"
        + runner_boot_lines(network_env or {}, ca_pem, ca_dir)
        + "IMDS=http://169.254.169.254/latest\n"
        'TOKEN=$(curl -sSf -X PUT "$IMDS/api/token"'
        ' -H "X-aws-ec2-metadata-token-ttl-seconds: 300")\n'
        'imds() { curl -sSf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/$1"; }\n'
        "INSTANCE_ID=$(imds instance-id)\n"
        f"SCALE_SET_ID=$(imds tags/instance/{TAG_SCALE_SET_ID})\n"
        f'PARAM={prefix}/"$SCALE_SET_ID/$INSTANCE_ID"\n'
        + jit_fetch_script("$PARAM", region)
        + f"cd {shlex.quote(runner_dir)}\n"
        f"runuser -u {shlex.quote(runner_user)} -- ./run.sh\n"
    )


def runner_entrypoint(
    region: str | None = None, *, runner_command: str = "/home/runner/run.sh"
) -> str:
    """The runner container's entrypoint script (for the task definition's command).

    It reads its task ARN from the task metadata endpoint (``ECS_CONTAINER_METADATA_URI_V4``,
    set by ECS), reads the parameter ``$GHA_JIT_PARAMETER_PATH/<task id>`` with the task role
    (retrying until the listener has written it), deletes it, unsets the task-role credential
    variables (job steps cannot fetch task-role credentials, so they cannot read other
    runners' parameters either) and execs the runner. Needs curl and the AWS CLI in the image.
    A private CA given as ``GHA_SCALESETS_CA_PEM`` (the task definition's environment) is
    trusted before any request (``AWS_CA_BUNDLE`` for the AWS CLI).
    """
    path = JIT_PARAMETER_PATH_ENV
    return (
        "#!/bin/bash\n"
        "# gha-scalesets runner entrypoint: fetch the one-time JIT config, then run.\n"
        "set +x\n"
        "set -euo pipefail\n"
        f': "${{{path}:?the listener sets it when it starts the task}}"\n'
        ': "${ECS_CONTAINER_METADATA_URI_V4:?ECS sets it in every task}"\n'
        + ca_setup_script('"$HOME/.gha-scalesets-ca"')  # before any request: a proxy may need it
        + 'TASK_ARN=$(curl -sSf --retry 5 "$ECS_CONTAINER_METADATA_URI_V4/task"'
        """ | sed -n 's/.*"TaskARN": *"\\([^"]*\\)".*/\\1/p')\n"""
        '[ -n "$TASK_ARN" ] || { echo "error: no TaskARN in the task metadata" >&2; exit 1; }\n'
        f'PARAM="${path}/${{TASK_ARN##*/}}"\n'
        + jit_fetch_script("$PARAM", region)
        + f"unset {path} PARAM TASK_ARN AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
        " AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN\n"
        f"exec {shlex.quote(runner_command)}\n"
    )
