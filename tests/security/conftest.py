"""Canary secrets for the hygiene tests: a recognisable PAT, a fresh RSA App key, and a
simulator that trusts both. :class:`~tests.support.canaries.Canaries` does the scanning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gha_scalesets.simulator.testing import SimulatorServer
from tests.support import keys
from tests.support.canaries import CANARY_APP_ID, CANARY_INSTALLATION, CANARY_PAT, Canaries


@pytest.fixture(scope="module")
def canary_key() -> str:
    return keys.rsa_pem()


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
