"""The credentials a simulator issued, kept only when its config asks (for leak scans)."""

from __future__ import annotations


class SecretLedger:
    """Opaque tokens and runner secrets handed out; JWTs and JIT configs are recognisable by
    their shape, but a registration token or a runner secret is just a random string."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.values: set[str] = set()

    def add(self, value: str) -> str:
        if self.enabled:
            self.values.add(value)
        return value
