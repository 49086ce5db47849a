"""What runners need to reach GitHub on a corporate network: proxy variables and the CA.

Runners are not our code: the actions runner (.NET), its Node.js actions, git and curl read the
standard variables. ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` go in both cases because tools
disagree on which they read; ``SSL_CERT_FILE`` *replaces* the default trust store (OpenSSL,
Python), so it names a full bundle, while ``NODE_EXTRA_CA_CERTS`` *adds* the private CA.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

import certifi

# Where the CA files are on a runner (a ConfigMap mount on Kubernetes, written at boot on AWS).
RUNNER_CA_DIR = "/etc/gha-scalesets/ca"
CA_FILE = "ca.pem"  # the private CA alone
BUNDLE_FILE = "bundle.pem"  # the public roots plus the private CA

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


CA_PEM_ENV = "GHA_SCALESETS_CA_PEM"  # the CA as text, for runners that write their own files
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def ca_setup_script(directory: str) -> str:
    """Shell lines for a runner's boot script: if ``$GHA_SCALESETS_CA_PEM`` is set, write it to
    ``directory/ca.pem`` and, after the system trust store, to ``directory/bundle.pem``, then
    export :func:`ca_environment` for them. ``directory`` is a shell word (``"$HOME/ca"``)."""
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
