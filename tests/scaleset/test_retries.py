"""Retries against injected faults: 5xx, 429 + Retry-After, rate limits, drops, deadlines."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gha_scalesets.scaleset import (
    ApiError,
    Client,
    PatCredentials,
    RateLimitedError,
    RetryPolicy,
    ScaleSet,
    TransportError,
)
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support.github import GET_SCALE_SET, JIT, ClientFactory, SleepRecorder, requests


async def test_5xx_is_retried_with_full_jitter_then_reported(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet, sleeps: SleepRecorder
) -> None:
    sim.set_faults(error_rate=1.0, error_status=500, routes=[GET_SCALE_SET])
    with pytest.raises(ApiError) as info:
        await client.get_scale_set(scale_set.id)
    assert info.value.status == 500 and info.value.attempts == 5
    assert "after 5 attempts" in str(info.value) and "injected fault" in str(info.value)
    assert requests(sim, GET_SCALE_SET) == 5
    assert len(sleeps.waits) == 4
    for attempt, wait in enumerate(sleeps.waits, start=1):
        assert 0 <= wait <= min(30.0, 2 ** (attempt - 1))


async def test_transient_5xx_recovers(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet, sleeps: SleepRecorder
) -> None:
    sim.set_faults(error_rate=1.0, error_status=503, routes=[GET_SCALE_SET])

    async def heal(_: float) -> None:
        await asyncio.to_thread(sim.clear_faults)

    sleeps.hook = heal
    assert await client.get_scale_set(scale_set.id) == scale_set
    assert requests(sim, GET_SCALE_SET) == 2


async def test_501_is_not_retried(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet, sleeps: SleepRecorder
) -> None:
    sim.set_faults(error_rate=1.0, error_status=501, routes=[GET_SCALE_SET])
    with pytest.raises(ApiError) as info:
        await client.get_scale_set(scale_set.id)
    assert info.value.status == 501 and info.value.attempts == 1
    assert sleeps.waits == []


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_replaces_the_backoff(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet, sleeps: SleepRecorder, status: int
) -> None:
    sim.set_faults(error_rate=1.0, error_status=status, retry_after_seconds=7, routes=[JIT])

    async def heal(_: float) -> None:
        await asyncio.to_thread(sim.clear_faults)

    sleeps.hook = heal
    result = await client.generate_jit_config(scale_set.id, f"after-{status}")
    assert result.ok
    # 7 s from the answer (a 429 is waited out by the pacer, on its clock)
    assert sleeps.waits == [pytest.approx(7.0, abs=0.5)]
    assert sim.stats()["runners"]["registered"] == 1


async def test_retry_after_beyond_the_limit_fails_fast_as_rate_limited(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet, sleeps: SleepRecorder
) -> None:
    sim.set_faults(error_rate=1.0, error_status=429, retry_after_seconds=900, routes=[JIT])
    with pytest.raises(RateLimitedError) as info:
        await client.generate_jit_config(scale_set.id, "too-busy")
    assert info.value.status == 429 and info.value.retry_after == 900
    assert "Retry in 900 s" in str(info.value)
    assert sleeps.waits == [] and requests(sim, JIT) == 1


async def test_exhausted_primary_rate_limit_waits_for_the_reset(
    sim: SimulatorServer, make_client: ClientFactory, scale_set: ScaleSet
) -> None:
    sleeps = SleepRecorder()
    patient = make_client(
        retry=RetryPolicy(seed=1, sleep=sleeps, max_server_wait=4000, deadline=None)
    )
    impatient = make_client()
    sim.set_faults(rate_limit_per_hour=2, routes=[GET_SCALE_SET])
    for _ in range(2):
        await patient.get_scale_set(scale_set.id)

    with pytest.raises(RateLimitedError) as info:
        await impatient.get_scale_set(scale_set.id)
    assert info.value.status == 403
    assert info.value.retry_after is not None and 3500 < info.value.retry_after <= 3601

    async def window_passes(_: float) -> None:
        await asyncio.to_thread(sim.clear_faults)

    sleeps.hook = window_passes
    assert await patient.get_scale_set(scale_set.id) == scale_set
    assert len(sleeps.waits) == 1 and 3500 < sleeps.waits[0] <= 3601  # X-RateLimit-Reset


async def test_dropped_connections_are_retried(
    sim: SimulatorServer,
    make_client: ClientFactory,
    patient_retry: RetryPolicy,
    scale_set: ScaleSet,
    sleeps: SleepRecorder,
) -> None:
    client = make_client(retry=patient_retry)
    sim.set_faults(drop_rate=0.3, routes=[JIT])
    results = await client.generate_jit_configs(scale_set.id, [f"d-{i}" for i in range(12)])
    assert all(r.ok for r in results)
    assert sleeps.waits and sim.stats()["runners"]["registered"] == 12


async def test_every_attempt_is_observed(sim: SimulatorServer, make_client: ClientFactory) -> None:
    seen: list[tuple[str, str, int | None]] = []
    client = make_client(
        observer=lambda method, route, status, _: seen.append((method, route, status))
    )
    sim.set_faults(drop_rate=1.0, routes=["GET /_apis/runtime/runnergroups/"])
    with pytest.raises(TransportError, match="after 5 attempt"):
        await client.get_runner_group_by_name("Default")
    route = "_apis/runtime/runnergroups/"
    assert seen == [
        ("POST", "orgs/{org}/actions/runners/registration-token", 201),
        ("POST", "actions/runner-registration", 200),
        *[("GET", route, None)] * 5,
    ]


async def test_a_broken_observer_does_not_break_calls(make_client: ClientFactory) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("metrics backend down")

    client = make_client(observer=explode)
    assert (await client.get_runner_group_by_name("Default")).id == 1


async def test_overall_deadline_bounds_the_retries(
    sim: SimulatorServer, make_client: ClientFactory, scale_set: ScaleSet
) -> None:
    client = make_client(retry=RetryPolicy(backoff_base=0.2, deadline=0.5, seed=3))
    sim.set_faults(error_rate=1.0, error_status=502, routes=[GET_SCALE_SET])
    with pytest.raises(ApiError) as info:
        await client.get_scale_set(scale_set.id)
    assert info.value.status == 502
    assert 1 < info.value.attempts < 5


async def test_connection_refused_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket closes
    sleeps = SleepRecorder()
    retry = RetryPolicy(max_attempts=3, seed=1, sleep=sleeps)
    async with Client(f"http://127.0.0.1:{port}/acme", PatCredentials("ghp_x"), retry=retry) as c:
        with pytest.raises(TransportError, match="ConnectError") as info:
            await c.get_runner_group_by_name("Default")
    assert "after 3 attempt(s)" in str(info.value)
    assert "ghp_x" not in str(info.value)
    assert len(sleeps.waits) == 2


def _self_signed(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def test_untrusted_tls_certificates_are_not_retried(
    tmp_path: Path, secret_input: Callable[[Path], Path]
) -> None:
    async def reject(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    tls = _self_signed(tmp_path / "cert.pem", secret_input(tmp_path / "key.pem"))
    server = await asyncio.start_server(reject, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    sleeps = SleepRecorder()
    retry = RetryPolicy(seed=1, sleep=sleeps)
    try:
        async with Client(f"https://127.0.0.1:{port}/acme", PatCredentials("p"), retry=retry) as c:
            with pytest.raises(TransportError, match="after 1 attempt"):
                await c.get_runner_group_by_name("Default")
    finally:
        server.close()
    assert sleeps.waits == []
