"""Serving the app with uvicorn on a socket bound before start (so port 0 works)."""

from __future__ import annotations

import logging
import socket

import uvicorn

from gha_scalesets.simulator.app import create_app
from gha_scalesets.simulator.config import SimulatorConfig

# uvicorn logs this when a response is abandoned mid-body, which is exactly how the
# drop_rate fault closes connections; it is expected noise, not a server error.
_ABANDONED = "ASGI callable returned without completing response."


class _DroppedConnectionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _ABANDONED


_FILTER = _DroppedConnectionFilter()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # an explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without
    # it Nagle + delayed ACK add ~40 ms to every response written in two parts
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def build_server(
    config: SimulatorConfig,
    *,
    log_level: str = "warning",
    tls: tuple[str, str] | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the simulator; run it with ``server.run(sockets=[bind(...)])``.

    ``tls`` is ``(certificate file, private key file)`` to serve HTTPS, like a GHES host.
    """
    logging.getLogger("uvicorn.error").addFilter(_FILTER)
    uv_config = uvicorn.Config(
        create_app(config),
        log_level=log_level,
        access_log=False,
        lifespan="on",
        backlog=2048,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    return uvicorn.Server(uv_config)
