"""A scripted, in-process GitHub for pacing tests: an ``httpx.MockTransport`` on a fake clock.

It serves the PAT auth chain, JIT configs and message sessions, tells the credentials apart
(each admin token names its PAT), records when each request arrived on the test's clock, and
answers whatever ``script(request)`` returns first (``None``: the normal answer).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import jwt

BASE = "https://ghes.test"
ADMIN = f"{BASE}/_services/pipelines/t1/"
_SECRET = "scripted-github-admin-token-signing-key"


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    at: float
    credential: str
    kind: str  # "registration", "admin-token", "jit", "session", "refresh", "delete", "other"
    status: int


@dataclass
class ScriptedGitHub:
    clock: Callable[[], float]
    pats: tuple[str, ...]
    script: Callable[[str, str, float], httpx.Response | None] = lambda *_: None
    revoked: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    _runner_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport())

    def during_block(self, seconds: float) -> list[Seen]:
        """Requests that arrived after the first refusal and before its wait was over."""
        index = next(i for i, s in enumerate(self.seen) if s.status == 429)
        refused_at = self.seen[index].at
        return [s for s in self.seen[index + 1 :] if s.at < refused_at + seconds]

    def arrivals(self, kind: str, credential: str | None = None) -> list[float]:
        return [s.at for s in self.seen if s.kind == kind and credential in (None, s.credential)]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        kind, credential = self._classify(request)
        now = self.clock()
        response = self._scripted(request, kind, credential, now)
        self.seen.append(Seen(now, credential, kind, response.status_code))
        return response

    def _classify(self, request: httpx.Request) -> tuple[str, str]:
        token = request.headers.get("authorization", "").partition(" ")[2]
        path = request.url.path
        if path.endswith("registration-token"):
            return "registration", token
        if path.endswith("runner-registration"):
            return "admin-token", token.removeprefix("reg-")
        try:
            credential = jwt.decode(token, _SECRET, algorithms=["HS256"])["pat"]
        except jwt.PyJWTError:
            credential = ""
        if path.endswith("generatejitconfig"):
            return "jit", credential
        if path.endswith("/sessions"):
            return "session", credential
        if "/sessions/" in path:
            return ("refresh" if request.method == "PATCH" else "delete"), credential
        return "other", credential

    def _scripted(
        self, request: httpx.Request, kind: str, credential: str, now: float
    ) -> httpx.Response:
        if credential in self.revoked or credential not in self.pats:
            return httpx.Response(401, json={"message": "Bad credentials"})
        scripted = self.script(kind, credential, now)
        if scripted is not None:
            return scripted
        if kind == "registration":
            return httpx.Response(201, json={"token": f"reg-{credential}"})
        if kind == "admin-token":
            claims = {"pat": credential, "exp": int(now) + 3600}
            return httpx.Response(200, json={"url": ADMIN, "token": jwt.encode(claims, _SECRET)})
        if kind == "jit":
            name = json.loads(request.content)["name"]
            runner = {"id": next(self._runner_ids), "name": name, "runnerScaleSetId": 1}
            return httpx.Response(200, json={"runner": runner, "encodedJITConfig": "e30="})
        if kind in ("session", "refresh"):
            return httpx.Response(200, json=_session(now))
        if kind == "delete":
            return httpx.Response(204)
        return httpx.Response(404, json={"message": "not scripted"})


def _session(now: float) -> dict[str, object]:
    return {
        "sessionId": "00000000-0000-4000-8000-000000000001",
        "ownerName": "owner",
        "runnerScaleSet": {"id": 1, "name": "set"},
        "messageQueueUrl": f"{BASE}/_services/broker/message?sessionId=1",
        "messageQueueAccessToken": f"mq-{now}",
        "statistics": {"totalAssignedJobs": 0},
    }


def refuse(status: int = 429, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"message": "secondary rate limit"})
