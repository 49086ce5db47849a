"""Fixtures of the provider tests: a GitHub App key and the dynamic-provider host process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import keys
from tests.support.provider_host import Host


@pytest.fixture(scope="session")
def rsa_pem() -> str:
    """An RSA private key in PEM, as GitHub issues for Apps."""
    return keys.rsa_pem()


@pytest.fixture(scope="session")
def ec_pem() -> str:
    """A valid PEM key of the wrong kind (GitHub App keys are RSA)."""
    return keys.pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def host() -> Iterator[Host]:
    """A fresh dynamic-provider host process per test (so each test sees a cold token cache)."""
    started = Host()
    yield started
    started.close()
