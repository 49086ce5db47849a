"""A fault-injecting HTTP proxy in front of the moto server.

moto always has capacity and never throttles. The proxy answers chosen AWS requests with the
error AWS would send (EC2's query-protocol XML, or the JSON protocol's ``__type``) and forwards
everything else, so the real SDK parses real error responses over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx


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


def _ec2_error(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
        f"<Code>{code}</Code><Message>injected {code}</Message></Error></Errors>"
        "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    ).encode()


class FaultProxy:
    """Forwards to ``upstream``; ``faults`` are checked in order; ``hits`` counts actions."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _fault_for(self, action: str, params: Mapping[str, Any]) -> Fault | None:
        with self._lock:
            self.hits[action] += 1
            for fault in self.faults:
                if fault.matches(action, params):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
        target = request.headers.get("X-Amz-Target")
        if target:  # JSON protocol (SSM, ECS, SQS): the action is in a header
            action, params = target.rsplit(".", 1)[-1], json.loads(body or b"{}")
        else:  # query protocol (EC2)
            params = dict(parse_qsl(body.decode()))
            action = params.get("Action", "")
        fault = self._fault_for(action, params)
        if fault is not None:
            if target:
                payload = json.dumps({"__type": fault.code, "message": f"injected {fault.code}"})
                self._reply(request, fault.status, payload.encode(), "application/x-amz-json-1.1")
            else:
                self._reply(request, fault.status, _ec2_error(fault.code), "text/xml")
            return
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}
        }
        upstream = self._http.post(request.path, content=body, headers=headers)
        self._reply(
            request,
            upstream.status_code,
            upstream.content,
            upstream.headers.get("content-type", ""),
        )

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._http.close()
            thread.join()
