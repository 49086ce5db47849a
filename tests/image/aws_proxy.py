"""An HTTPS proxy in front of moto, for clients that cannot be pointed at an endpoint URL.

The AWS CLI of Debian bookworm (2.9) predates ``AWS_ENDPOINT_URL``; what it does support is the
standard ``HTTPS_PROXY`` and ``AWS_CA_BUNDLE``. This proxy answers ``CONNECT`` for any host,
terminates TLS with a certificate for that host signed by a test CA, and forwards the decrypted
requests to moto's server, which routes them by their ``Host`` header
(``ssm.<region>.amazonaws.com`` goes to SSM). It records the hosts tunnelled to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

import trustme


class AwsTlsProxy:
    """``CONNECT host:443`` -> TLS as ``host`` -> plain HTTP to ``moto_url``."""

    def __init__(self, moto_url: str, hosts: list[str], directory: Path) -> None:
        moto = urlsplit(moto_url)
        self._moto = (moto.hostname or "127.0.0.1", moto.port or 80)
        ca = trustme.CA(organization_name="gha-scalesets image-tier CA")
        self.ca_file = directory / "aws-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.ca_file.chmod(0o644)
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*hosts).configure_cert(self._tls)
        self.tunnels: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AwsTlsProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self._tls)
            moto_reader, moto_writer = await asyncio.open_connection(*self._moto)
            await asyncio.gather(_pump(reader, moto_writer), _pump(moto_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away
        finally:
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()  # half-close: the other direction may still be talking
            else:
                writer.close()
