"""A TCP proxy in front of the simulator that can lose responses.

The simulator's ``drop_rate`` fault aborts a request before it is processed. A *lost response*
is the harder case for non-idempotent calls: the server did the work, the reply never came
back. This proxy forwards a matching request, waits for the server's answer and then closes
the client connection instead of relaying it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class _Connection:
    lose_reply: bool = False


@dataclass
class LossyProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_port``; see :meth:`lose_next`."""

    target_port: int
    port: int = 0
    lost: int = 0
    _pending: dict[bytes, int] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> LossyProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def lose_next(self, needle: str, count: int = 1) -> None:
        """Lose the responses of the next ``count`` requests whose request line has ``needle``."""
        self._pending[needle.encode()] = count

    def _claim(self, chunk: bytes) -> bool:
        request_line = chunk.split(b"\r\n", 1)[0]
        for needle, count in self._pending.items():
            if count > 0 and needle in request_line:
                self._pending[needle] = count - 1
                return True
        return False

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        connection = _Connection()

        async def to_server() -> None:
            while chunk := await client_r.read(65536):
                if self._claim(chunk):
                    connection.lose_reply = True
                upstream_w.write(chunk)
                await upstream_w.drain()

        async def to_client() -> None:
            while chunk := await upstream_r.read(65536):
                if connection.lose_reply:
                    self.lost += 1
                    return  # the server answered (so it processed the request): drop it
                client_w.write(chunk)
                await client_w.drain()

        pumps = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass  # proxy shutdown; asyncio's server callback mishandles cancelled handlers
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_w, upstream_w):
                writer.close()
