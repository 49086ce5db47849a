"""The real toolchain's pins agree with the Python packages the project installs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path, pattern: str) -> dict[str, str]:
    return dict(re.findall(pattern, path.read_text(), flags=re.MULTILINE))


def test_cli_and_plugins_match_the_python_sdks() -> None:
    toolchain = _pins(ROOT / "toolchain/versions.env", r"^(\w+)=(\S+)$")
    python = {k.lower(): v for k, v in _pins(ROOT / "constraints.txt", r"^(\S+)==(\S+)$").items()}
    assert toolchain["PULUMI_SDK_VERSION"] == python["pulumi"]
    assert toolchain["PULUMI_KUBERNETES_VERSION"] == python["pulumi_kubernetes"]
    cli = tuple(int(p) for p in toolchain["PULUMI_CLI_VERSION"].split("."))
    sdk = tuple(int(p) for p in toolchain["PULUMI_SDK_VERSION"].split("."))
    assert cli >= sdk, "the CLI must be at least the SDK's version"
