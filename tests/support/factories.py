"""Factories whose products are closed when the test ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.asynccontextmanager
async def closing_factory(
    build: Callable[..., T], close: Callable[[T], Awaitable[Any]]
) -> AsyncIterator[Callable[..., T]]:
    """``build`` as a factory; everything it built is closed (``close``) when the block ends,
    in the order built."""
    built: list[T] = []

    def make(*args: Any, **kwargs: Any) -> T:
        product = build(*args, **kwargs)
        built.append(product)
        return product

    try:
        yield make
    finally:
        for product in built:
            await close(product)
