"""Boot script of the EC2 listener instance: run the listener image under Docker.

The container uses the host network so it reaches the instance metadata service with a hop
limit of 1: a bridged container would need 2, which would also let any other container on the
host fetch the instance role's credentials.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from gha_scalesets.components.images import parse_ecr_image
from gha_scalesets.components.network import LISTENER_CA_FILE

ENV_FILE = "/etc/gha-scalesets/listener.env"
CONTAINER = "gha-scalesets-listener"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # https_proxy is lowercase


def _env_file(env: Mapping[str, str]) -> str:
    lines = []
    for name, value in sorted(env.items()):
        # Docker's --env-file takes each line literally: no quoting, but no newlines either.
        if not _ENV_NAME.match(name) or "\n" in value:
            raise ValueError(f"environment variable {name!r} cannot go in a Docker env file")
        lines.append(f"{name}={value}")
    return "\n".join(lines)


def listener_user_data(
    env: Mapping[str, str], image: str, region: str, log_group: str, *, ca_pem: str | None = None
) -> str:
    """The cloud-init script: install Docker, write the settings, run the listener for good.

    ``env`` holds no secrets (the credential is fetched from Secrets Manager by ARN), so it may
    sit in user data, which any principal with ``ec2:DescribeInstanceAttribute`` can read.
    ``ca_pem`` (a private CA; an env file cannot hold it) is written to ``LISTENER_CA_FILE``
    and mounted read-only into the container at the same path.
    """
    q = shlex.quote
    ca_setup = mount = ""
    if ca_pem:
        ca_setup = (
            f"install -d -m 0755 {q(LISTENER_CA_FILE.rsplit('/', 1)[0])}\n"
            f"cat > {q(LISTENER_CA_FILE)} <<'GHA_SCALESETS_CA'\n{ca_pem.strip()}\n"
            "GHA_SCALESETS_CA\n"
        )
        mount = f" --volume {q(LISTENER_CA_FILE)}:{q(LISTENER_CA_FILE)}:ro"
    ecr = parse_ecr_image(image)
    login = (
        f"aws ecr get-login-password --region {q(ecr.region)}"
        f" | docker login --username AWS --password-stdin {q(ecr.registry)}\n"
        if ecr
        else ""
    )
    return (
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        "dnf install -y docker\n"
        "systemctl enable --now docker\n"
        f"install -d -m 0700 {q(ENV_FILE.rsplit('/', 1)[0])}\n"
        f"cat > {q(ENV_FILE)} <<'GHA_SCALESETS_ENV'\n"
        f"{_env_file(env)}\n"
        "GHA_SCALESETS_ENV\n"
        f"chmod 0600 {q(ENV_FILE)}\n"
        f"{ca_setup}"
        f"{login}"
        f"docker run --detach --name {CONTAINER} --restart always --network host"
        " --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges"
        f" --env-file {q(ENV_FILE)}{mount}"
        f" --log-driver awslogs --log-opt awslogs-region={q(region)}"
        f" --log-opt awslogs-group={q(log_group)}"
        f" {q(image)}\n"
    )
