"""Blocking facade over :class:`~scaleset.Client` for callers that cannot be async.

The async client runs on a private event loop in a daemon thread started on first use, so the
facade works from any thread (Pulumi's provider host calls from gRPC worker threads) and inside
a thread that already runs an event loop. Nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from gha_scalesets.scaleset.client import Client
from gha_scalesets.scaleset.config_url import ConfigUrl
from gha_scalesets.scaleset.credentials import Credentials

P = ParamSpec("P")
R = TypeVar("R")


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="scaleset-sync", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("SyncClient called from its own event loop; use the async Client")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _mirror(
    method: Callable[Concatenate[Client, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncClient, P], R]:
    """A blocking twin of an async :class:`Client` method."""

    @functools.wraps(method)
    def call(self: SyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(lambda client: method(client, *args, **kwargs))

    return call


class SyncClient:
    """Synchronous version of :class:`~scaleset.Client`: same methods, same arguments, blocking.

    Takes the keyword options of ``Client`` except ``http`` (a pool belongs to one loop).
    Close it (or use ``with``) to stop its thread. It cannot be pickled: dynamic providers must
    create it when they need it, not keep it in state Pulumi serialises.
    """

    def __init__(
        self, config_url: str | ConfigUrl, credentials: Credentials, **options: Any
    ) -> None:
        if "http" in options:
            raise TypeError("SyncClient manages its own HTTP pool; 'http' is not supported")
        # Built eagerly so bad URLs or credentials fail here, in the caller's thread.
        self._client = Client(config_url, credentials, **options)
        self._loop: _LoopThread | None = None
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def __reduce__(self) -> Any:
        raise TypeError(
            "SyncClient holds credentials and a live event loop and cannot be pickled; create it "
            "inside the provider method (or configure()) instead of storing it on the provider"
        )

    def _run(self, call: Callable[[Client], Coroutine[Any, Any, R]]) -> R:
        with self._guard:
            if self._loop is None:
                self._loop = _LoopThread()
            loop = self._loop
        return loop.run(call(self._client))

    def close(self) -> None:
        """Close the client and stop the background loop (idempotent)."""
        with self._guard:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.run(self._client.aclose())
            loop.stop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config(self) -> ConfigUrl:
        return self._client.config

    @property
    def auth_chain_runs(self) -> int:
        return self._client.auth_chain_runs

    get_runner_group_by_name = _mirror(Client.get_runner_group_by_name)
    get_scale_set = _mirror(Client.get_scale_set)
    get_scale_set_by_name = _mirror(Client.get_scale_set_by_name)
    create_scale_set = _mirror(Client.create_scale_set)
    update_scale_set = _mirror(Client.update_scale_set)
    delete_scale_set = _mirror(Client.delete_scale_set)
    generate_jit_config = _mirror(Client.generate_jit_config)
    generate_jit_configs = _mirror(Client.generate_jit_configs)
    get_runner = _mirror(Client.get_runner)
    get_runner_by_name = _mirror(Client.get_runner_by_name)
    remove_runner = _mirror(Client.remove_runner)
    create_message_session = _mirror(Client.create_message_session)
    refresh_message_session = _mirror(Client.refresh_message_session)
    delete_message_session = _mirror(Client.delete_message_session)
    get_message = _mirror(Client.get_message)
    delete_message = _mirror(Client.delete_message)
    acquire_jobs = _mirror(Client.acquire_jobs)
