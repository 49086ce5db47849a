"""Raw-HTTP helpers for the simulator conformance tests (httpx + pyjwt, no project client)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT

API_VERSION = {"api-version": "6.0-preview"}
MQ_ACCEPT = "application/json; api-version=6.0-preview"
SETS = "_apis/runtime/runnerscalesets"
AGENTS = "_apis/distributedtask/pools/0/agents"


def app_jwt(
    client_id: str, pem: str, now: float, *, iat_offset: int = -60, lifetime: int = 540
) -> str:
    """An App JWT as the Go clients build it: iat = now - 60 s, exp = iat + 9 min."""
    iat = int(now) + iat_offset
    return jwt.encode({"iat": iat, "exp": iat + lifetime, "iss": client_id}, pem, algorithm="RS256")


def registration_path(scope_path: str) -> str:
    """REST path minting a registration token for ``acme``, ``acme/app`` or ``enterprises/e``."""
    if scope_path.startswith("enterprises/"):
        owner = scope_path
    else:
        owner = f"repos/{scope_path}" if "/" in scope_path else f"orgs/{scope_path}"
    return f"{owner}/actions/runners/registration-token"


def registration_token(
    http: httpx.Client, sim: SimulatorServer, scope_path: str, credential: str = SIM_PAT
) -> str:
    response = http.post(
        f"{sim.api_url}/{registration_path(scope_path)}",
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


def register(
    http: httpx.Client, sim: SimulatorServer, token: str, scope_path: str
) -> httpx.Response:
    return http.post(
        f"{sim.api_url}/actions/runner-registration",
        headers={"Authorization": f"RemoteAuth {token}", "Content-Type": "application/json"},
        content=json.dumps({"url": sim.config_url(scope_path), "runner_event": "register"}) + "\n",
    )


@dataclass
class Admin:
    """An admin-API connection: base URL and admin token from runner-registration."""

    client: httpx.Client
    base: str
    token: str

    def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return self.client.request(
            method,
            self.base + path,
            params={**API_VERSION, **(params or {})},
            headers=headers,
            **kwargs,
        )

    def create_scale_set(
        self, name: str, labels: list[str] | None = None, group_id: int = 1
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "runnerGroupId": group_id,
            "labels": [{"type": "System", "name": label} for label in labels or [name]],
            "RunnerSetting": {"disableUpdate": True},
            "createdOn": "0001-01-01T00:00:00Z",
        }
        response = self.call("POST", SETS, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def create_session(self, scale_set_id: int, owner: str = "listener-0") -> httpx.Response:
        body = {"ownerName": owner, "sessionId": "00000000-0000-0000-0000-000000000000"}
        return self.call("POST", f"{SETS}/{scale_set_id}/sessions", json=body)

    def listener(self, scale_set_id: int, owner: str = "listener-0") -> Listener:
        response = self.create_session(scale_set_id, owner)
        assert response.status_code == 200, response.text
        return Listener(self.client, response.json())

    def jit(self, scale_set_id: int, name: str) -> httpx.Response:
        return self.call(
            "POST",
            f"{SETS}/{scale_set_id}/generatejitconfig",
            json={"name": name, "workFolder": ""},
        )


def connect(http: httpx.Client, sim: SimulatorServer, scope_path: str = "acme") -> Admin:
    """Run the PAT auth chain for ``scope_path``; an admin connection."""
    response = register(http, sim, registration_token(http, sim, scope_path), scope_path)
    assert response.status_code == 200, response.text
    return Admin(http, response.json()["url"], response.json()["token"])


@dataclass
class Listener:
    """A message-queue session: the session JSON plus GET/DELETE on its queue URL."""

    client: httpx.Client
    session: dict[str, Any]

    @property
    def token(self) -> str:
        return self.session["messageQueueAccessToken"]

    def _url(self, suffix: str = "", last_id: int = 0) -> httpx.URL:
        url = httpx.URL(self.session["messageQueueUrl"])
        url = url.copy_with(path=url.path + suffix)
        return url.copy_merge_params({"lastMessageId": last_id}) if last_id else url

    def get(
        self, last_id: int = 0, capacity: int | None = 1000, token: str | None = None
    ) -> httpx.Response:
        headers = {"Accept": MQ_ACCEPT, "Authorization": f"Bearer {token or self.token}"}
        if capacity is not None:
            headers["X-ScaleSetMaxCapacity"] = str(capacity)
        return self.client.get(self._url(last_id=last_id), headers=headers)

    def delete(self, message_id: int, token: str | None = None) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token or self.token}",
            "Content-Type": "application/json",
        }
        return self.client.delete(self._url(f"/{message_id}"), headers=headers)

    def next_events(
        self, last_id: int = 0, capacity: int | None = 1000
    ) -> tuple[int, list[dict[str, Any]]]:
        """GET one message (must be 200) and ack it; returns (messageId, job messages)."""
        response = self.get(last_id, capacity)
        assert response.status_code == 200, (response.status_code, response.text)
        message = response.json()
        assert self.delete(message["messageId"]).status_code == 204
        return message["messageId"], job_messages(message)


def job_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelope body: a JSON array serialised as a string."""
    assert isinstance(message["body"], str)
    return json.loads(message["body"]) if message["body"] else []
