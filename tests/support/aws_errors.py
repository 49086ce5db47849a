"""An HTTP proxy in front of the moto server that answers chosen AWS requests with AWS errors.

moto always has capacity and never throttles. The proxy forwards every request to moto except
those its ``choose`` callback picks, which it answers with the error AWS would send: the JSON
protocols' ``__type`` body (DynamoDB, SSM, ECS, SQS) or EC2's query-protocol XML. The real SDK
therefore parses real error responses over HTTP, and its own retry mode takes part.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl

import httpx


@dataclass(frozen=True)
class AwsError:
    """The error to answer a request with."""

    code: str
    status: int = 400


# (operation such as ``PutItem`` or ``RunInstances``, its request parameters) -> error or None
Chooser = Callable[[str, Mapping[str, Any]], AwsError | None]


def _query_error(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
        f"<Code>{code}</Code><Message>injected {code}</Message></Error></Errors>"
        "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    ).encode()


class AwsErrorProxy:
    """Listens on 127.0.0.1 (``url``) and forwards to ``upstream``; ``choose`` is called under
    a lock, one request at a time, so it may keep counters and a seeded random generator."""

    def __init__(self, upstream: str, choose: Chooser) -> None:
        self._choose = choose
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, *_: object) -> None:
                pass  # the request log would be noise

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
        target = request.headers.get("X-Amz-Target")
        # JSON protocols name the operation in a header, the query protocol (EC2) in the body.
        if target:
            operation, params = target.rsplit(".", 1)[-1], json.loads(body or b"{}")
        else:
            params = dict(parse_qsl(body.decode()))
            operation = params.get("Action", "")
        with self._lock:
            error = self._choose(operation, params)
        if error is not None and target:
            payload = json.dumps({"__type": error.code, "message": f"injected {error.code}"})
            content_type = request.headers.get("Content-Type", "application/x-amz-json-1.1")
            self._reply(request, error.status, payload.encode(), content_type)
        elif error is not None:
            self._reply(request, error.status, _query_error(error.code), "text/xml")
        else:
            self._reply(request, *self._forward(request, body))

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, str]:
        """Send the request upstream: (status, body, content type) of the answer."""
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}
        }
        upstream = self._http.post(request.path, content=body, headers=headers)
        return upstream.status_code, upstream.content, upstream.headers.get("content-type", "")

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", ctype)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    @contextmanager
    def running(self) -> Iterator[Self]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._http.close()
            thread.join()


@dataclass
class Fault:
    """Answer ``action`` requests whose parameters satisfy ``when`` with an AWS error."""

    action: str
    code: str
    status: int = 400
    when: Callable[[Mapping[str, Any]], bool] = lambda _params: True
    times: int | None = None  # None: every matching request

    def matches(self, action: str, params: Mapping[str, Any]) -> bool:
        return (
            action == self.action and (self.times is None or self.times > 0) and self.when(params)
        )


class FaultProxy(AwsErrorProxy):
    """Forwards to ``upstream``; ``faults`` are checked in order; ``hits`` counts actions."""

    def __init__(self, upstream: str) -> None:
        self.faults: list[Fault] = []
        self.hits: Counter[str] = Counter()
        super().__init__(upstream, self._choose)

    def _choose(self, action: str, params: Mapping[str, Any]) -> AwsError | None:
        self.hits[action] += 1
        for fault in self.faults:
            if fault.matches(action, params):
                if fault.times is not None:
                    fault.times -= 1
                return AwsError(fault.code, fault.status)
        return None
