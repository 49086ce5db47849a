"""Canary secrets for the hygiene tests: a recognisable PAT, a fresh RSA App key, and a
simulator that trusts both. :class:`~benchmarks.chaos_checks.Canaries` does the scanning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from benchmarks.chaos_checks import CANARY_PAT, Canaries
from gha_scalesets.simulator.testing import SimulatorServer

CANARY_APP_ID = "Iv1.canaryapp"
CANARY_INSTALLATION = 777


@pytest.fixture(scope="module")
def canary_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def canaries(canary_key: str) -> Canaries:
    found = Canaries()
    # The PEM body without its armour lines: a leak of the key material itself.
    found.secrets["app-key"] = "".join(canary_key.splitlines()[1:-1])
    return found


@pytest.fixture(scope="module")
def canary_sim(canary_key: str) -> Iterator[SimulatorServer]:
    with SimulatorServer(
        pats=[CANARY_PAT],
        apps=[(CANARY_APP_ID, CANARY_INSTALLATION, canary_key)],
        long_poll_seconds=0.5,
        seed=3,
    ) as sim:
        yield sim
