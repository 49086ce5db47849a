"""Auth chain conformance: App JWT -> installation token, PAT, registration token ->
runner-registration -> admin token; expiry and wrong credentials answer 401."""

from __future__ import annotations

import json
import re

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.simulator.raw import (
    SETS,
    app_jwt,
    connect,
    register,
    registration_path,
    registration_token,
)

AppCreds = tuple[str, int, str]


def _access_tokens(
    http: httpx.Client, sim: SimulatorServer, installation_id: int, token: str
) -> httpx.Response:
    return http.post(
        f"{sim.api_url}/app/installations/{installation_id}/access_tokens",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/vnd.github+json",
        },
    )


def test_app_jwt_yields_installation_token(
    http: httpx.Client, sim: SimulatorServer, sim_app_credentials: AppCreds
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    response = _access_tokens(http, sim, installation_id, app_jwt(client_id, pem, sim.now()))
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ghs_")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
    # the installation token works for org- and repo-scoped registration tokens
    for scope in ("acme", "acme/app"):
        assert registration_token(http, sim, scope, credential=body["token"])


def _bad_key_jwt(client_id: str, now: float) -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return app_jwt(client_id, pem, now)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("expired", "expired"),
        ("issued_in_future", "iat"),
        ("too_long", "too far"),
        ("unknown_app", "iss"),
        ("wrong_key", "signature"),
        ("hs256", "RS256"),
        ("garbage", "could not be decoded"),
    ],
)
def test_bad_app_jwts_are_rejected(
    http: httpx.Client, sim: SimulatorServer, sim_app_credentials: AppCreds, case: str, message: str
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    now = sim.now()
    token = {
        "expired": lambda: app_jwt(client_id, pem, now - 1200),
        "issued_in_future": lambda: app_jwt(client_id, pem, now, iat_offset=300),
        "too_long": lambda: app_jwt(client_id, pem, now, lifetime=3600),
        "unknown_app": lambda: app_jwt("Iv1.unknown", pem, now),
        "wrong_key": lambda: _bad_key_jwt(client_id, now),
        "hs256": lambda: jwt.encode(
            {"iss": client_id, "iat": int(now), "exp": int(now) + 60},
            "x" * 32,
            algorithm="HS256",
        ),
        "garbage": lambda: "not-a-jwt",
    }[case]()
    response = _access_tokens(http, sim, installation_id, token)
    assert response.status_code == 401
    assert message in response.json()["message"]
    assert response.json()["documentation_url"]


def test_app_jwt_skew_is_tolerated(
    http: httpx.Client, sim: SimulatorServer, sim_app_credentials: AppCreds
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    # a client clock 30 s ahead: iat lands 30 s in the simulator's future
    token = app_jwt(client_id, pem, sim.now() + 90)
    assert _access_tokens(http, sim, installation_id, token).status_code == 201


def test_unknown_installation_is_404(
    http: httpx.Client, sim: SimulatorServer, sim_app_credentials: AppCreds
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    token = app_jwt(client_id, pem, sim.now())
    assert _access_tokens(http, sim, installation_id + 1, token).status_code == 404


def test_installation_token_expires(
    http: httpx.Client, sim: SimulatorServer, sim_app_credentials: AppCreds
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    token = _access_tokens(http, sim, installation_id, app_jwt(client_id, pem, sim.now())).json()[
        "token"
    ]
    sim.advance_clock(3601)
    response = http.post(
        f"{sim.api_url}/{registration_path('acme')}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


def test_installation_token_cannot_register_enterprise_runners(
    http: httpx.Client, sim: SimulatorServer, sim_app_credentials: AppCreds
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    token = _access_tokens(http, sim, installation_id, app_jwt(client_id, pem, sim.now())).json()[
        "token"
    ]
    response = http.post(
        f"{sim.api_url}/{registration_path('enterprises/e')}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize("scope", ["acme", "acme/app", "enterprises/e"])
def test_pat_registration_token_and_runner_registration(
    http: httpx.Client, sim: SimulatorServer, scope: str
) -> None:
    response = http.post(
        f"{sim.api_url}/{registration_path(scope)}",
        headers={
            "Authorization": f"Bearer {SIM_PAT}",
            "Content-Type": "application/vnd.github.v3+json",
        },
    )
    assert response.status_code == 201
    assert set(response.json()) == {"token", "expires_at"}
    registration = register(http, sim, response.json()["token"], scope)
    assert registration.status_code == 200
    body = registration.json()
    assert body["url"].startswith(f"{sim.url}/_services/pipelines/")
    assert body["url"].endswith("/")
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["exp"] > sim.now() + 3000


def test_bad_pat_is_401(http: httpx.Client, sim: SimulatorServer) -> None:
    response = http.post(
        f"{sim.api_url}/{registration_path('acme')}", headers={"Authorization": "Bearer ghp_wrong"}
    )
    assert response.status_code == 401
    missing = http.post(f"{sim.api_url}/{registration_path('acme')}")
    assert missing.status_code == 401


def test_runner_registration_rejects_wrong_expired_or_foreign_tokens(
    http: httpx.Client, sim: SimulatorServer
) -> None:
    assert register(http, sim, "NOTATOKEN", "acme").status_code == 401
    acme_token = registration_token(http, sim, "acme")
    assert register(http, sim, acme_token, "other-org").status_code == 401
    sim.advance_clock(3601)
    assert register(http, sim, acme_token, "acme").status_code == 401


def test_runner_registration_body_is_validated(http: httpx.Client, sim: SimulatorServer) -> None:
    token = registration_token(http, sim, "acme")
    response = http.post(
        f"{sim.api_url}/actions/runner-registration",
        headers={"Authorization": f"RemoteAuth {token}"},
        content=json.dumps({"url": f"{sim.url}/a/b/c", "runner_event": "register"}),
    )
    assert response.status_code == 400
    assert "invalid config URL" in response.json()["message"]


def test_admin_token_expiry_and_tenant_binding(http: httpx.Client, sim: SimulatorServer) -> None:
    acme, other = connect(http, sim, "acme"), connect(http, sim, "other")
    assert acme.call("GET", SETS).status_code == 200
    foreign = http.get(
        other.base + SETS,
        params={"api-version": "6.0-preview"},
        headers={"Authorization": f"Bearer {acme.token}"},
    )
    assert foreign.status_code == 401
    assert "VssUnauthorizedException" in foreign.json()["typeName"]
    sim.advance_clock(3601)
    expired = acme.call("GET", SETS)
    assert expired.status_code == 401


def test_admin_calls_require_api_version(http: httpx.Client, sim: SimulatorServer) -> None:
    admin = connect(http, sim)
    headers = {"Authorization": f"Bearer {admin.token}"}
    assert http.get(admin.base + SETS, headers=headers).status_code == 400
    sorted_query = http.get(
        admin.base + SETS,
        params={"api-version": "6.0-preview", "name": "x", "runnerGroupId": 1},
        headers=headers,
    )
    assert sorted_query.status_code == 200
    assert sorted_query.json() == {"count": 0, "value": []}


def test_reset_invalidates_earlier_tokens(http: httpx.Client, sim: SimulatorServer) -> None:
    admin = connect(http, sim)
    sim.reset()
    assert admin.call("GET", SETS).status_code == 401


def test_pat_without_runner_scope_is_403(sim_factory) -> None:
    """A valid PAT lacking repo/admin:org scope is refused with 403, not 401 (wrong scopes)."""
    server = sim_factory(unscoped_pats=["ghp_read_only"])
    answer = httpx.post(
        f"{server.url}/api/v3/orgs/acme/actions/runners/registration-token",
        headers={"Authorization": "Bearer ghp_read_only"},
    )
    assert answer.status_code == 403
    assert "not accessible" in answer.json()["message"]
