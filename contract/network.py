"""What runners need to reach GitHub on a corporate network: proxy variables and the CA.

Runners are not our code: the actions runner (.NET), its Node.js actions, git and curl read the
standard variables. ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` go in both cases because tools
disagree on which they read; ``SSL_CERT_FILE`` *replaces* the default trust store (OpenSSL,
Python), so it names a full bundle, while ``NODE_EXTRA_CA_CERTS`` *adds* the private CA. The
component puts these in task definitions, user data and Kubernetes objects; the listener in the
environment of the runners it starts itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import certifi

from gha_scalesets.contract.names import BUNDLE_FILE, CA_FILE

# Never through the proxy: loopback, the EC2 instance metadata service (instance role) and the
# ECS task metadata/credentials endpoint; on Kubernetes also in-cluster service names.
BASE_NO_PROXY = ("localhost", "127.0.0.1", "169.254.169.254", "169.254.170.2")
K8S_NO_PROXY = (".svc", ".cluster.local")


def no_proxy_list(extra: str | None, defaults: Iterable[str] = BASE_NO_PROXY) -> str:
    """``defaults`` plus the user's comma-separated hosts, without duplicates, in order."""
    hosts = [*defaults, *(h.strip() for h in (extra or "").split(","))]
    return ",".join(dict.fromkeys(h for h in hosts if h))


def proxy_environment(proxy: str, no_proxy: str) -> dict[str, str]:
    """The proxy variables in both spellings (``proxy`` may hold credentials: a secret)."""
    env = {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "NO_PROXY": no_proxy}
    return env | {name.lower(): value for name, value in env.items()}


def trust_bundle(ca_pem: str) -> str:
    """The public roots (certifi) followed by the private CA: a complete ``SSL_CERT_FILE``."""
    return Path(certifi.where()).read_text().rstrip("\n") + "\n" + ca_pem.strip() + "\n"


def ca_environment(directory: str | Path) -> dict[str, str]:
    """Variables pointing runner tools at the CA files in ``directory`` (the AWS CLI and SDKs
    read ``AWS_CA_BUNDLE``, not ``SSL_CERT_FILE``)."""
    return {
        "SSL_CERT_FILE": f"{directory}/{BUNDLE_FILE}",
        "NODE_EXTRA_CA_CERTS": f"{directory}/{CA_FILE}",
        "AWS_CA_BUNDLE": f"{directory}/{BUNDLE_FILE}",
    }


def write_ca_files(directory: Path, ca_pem: str) -> dict[str, str]:
    """Write ``ca.pem`` and ``bundle.pem`` (world-readable: a CA is public) and return
    :func:`ca_environment` for them."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CA_FILE).write_text(ca_pem.strip() + "\n")
    (directory / BUNDLE_FILE).write_text(trust_bundle(ca_pem))
    return ca_environment(directory)
