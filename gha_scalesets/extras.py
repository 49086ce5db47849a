"""The pip extras of gha-scalesets, and the error that names the one a missing import needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def needs_extra(extra: str, what: str) -> Iterator[None]:
    """Turn a missing third-party module inside the block into an error naming ``extra``."""
    try:
        yield
    except ModuleNotFoundError as missing:
        if (missing.name or "").startswith("gha_scalesets"):
            raise
        raise ImportError(
            f"{what} needs the '{extra}' extra: pip install 'gha-scalesets[{extra}]' "
            f"(module {missing.name!r} is not installed)"
        ) from missing
