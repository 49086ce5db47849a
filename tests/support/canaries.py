"""Canary secrets: recognisable fake values (a PAT, a private key, JIT configs) and where they
must never show up (logs, metrics, exception text, files)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCHMARK_PAT = "ghp_benchmark_token"  # what the benchmarks' simulators trust
CANARY_PAT = "ghp_CANARYchaos0000000000000000000000000"
CANARY_PAT_2 = "ghp_CANARYchaos0000000000000000000000002"  # a listener's second credential
CANARY_APP_ID = "Iv1.canaryapp"
CANARY_INSTALLATION = 777
# JIT configs are long base64 blobs; a 24-character slice of one is enough to recognise it.
_CANARY_SLICE = 24


@dataclass
class Canaries:
    """The secrets of one run and where they must never show up."""

    secrets: dict[str, str] = field(
        default_factory=lambda: {"pat": CANARY_PAT, "pat-2": CANARY_PAT_2}
    )

    def add_jit_configs(self, configs: Iterable[str]) -> None:
        for index, config in enumerate(configs):
            self.secrets[f"jit-config-{index}"] = config

    def _needles(self) -> Iterator[tuple[str, str]]:
        for name, secret in self.secrets.items():
            yield name, secret
            if len(secret) > 2 * _CANARY_SLICE:  # a truncated or sliced copy still leaks
                middle = len(secret) // 2
                yield name, secret[middle : middle + _CANARY_SLICE]

    def leaks(self, sources: dict[str, str]) -> list[str]:
        """``"<secret> in <source>"`` for every canary found (deduplicated per pair)."""
        found = {
            f"{name} in {where}"
            for where, text in sources.items()
            for name, needle in self._needles()
            if needle in text
        }
        return sorted(found)


def files_text(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text, keyed by its relative path."""
    return {
        f"file:{path.relative_to(root)}": path.read_bytes().decode(errors="replace")
        for path in root.rglob("*")
        if path.is_file()
    }
