"""Simulator configuration: credentials it accepts, timings, mode and initial faults.

The same :class:`SimulatorConfig` is built by the command line (``python -m
gha_scalesets.simulator``) and by :class:`simulator.testing.SimulatorServer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from gha_scalesets.simulator.faults import FaultSettings
from gha_scalesets.simulator.limits import LimitSettings

DEFAULT_GROUP = "Default"


@dataclass(frozen=True)
class AppCredential:
    """A GitHub App the simulator trusts: client ID, its one installation, its public key."""

    client_id: str
    installation_id: int
    public_key: RSAPublicKey = field(repr=False)

    @classmethod
    def from_pem(cls, client_id: str, installation_id: int, pem: str | bytes) -> AppCredential:
        """Accept the App's private key (public key derived) or its public key, as PEM."""
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key: object = load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            try:
                key = load_pem_public_key(data)
            except ValueError:
                raise ValueError(
                    f"GitHub App {client_id}: the key is neither an unencrypted RSA private key "
                    "nor an RSA public key in PEM format"
                ) from None
        if isinstance(key, RSAPrivateKey):
            key = key.public_key()
        if not isinstance(key, RSAPublicKey):
            raise ValueError(f"GitHub App {client_id}: the key must be an RSA key")
        return cls(client_id, int(installation_id), key)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that shapes one simulator instance. Durations are in seconds."""

    pats: tuple[str, ...] = field(default=(), repr=False)
    # valid PATs lacking the runner-admin scope (repo / admin:org / manage_runners:enterprise)
    unscoped_pats: tuple[str, ...] = field(default=(), repr=False)
    apps: tuple[AppCredential, ...] = ()
    runner_groups: tuple[str, ...] = ()
    long_poll_seconds: float = 50.0
    assign_timeout_seconds: float = 300.0
    max_reassignments: int = 3
    session_ttl_seconds: float = 120.0
    ghes_acquire: bool = False
    seed: int = 0
    admin_token_ttl_seconds: float = 3600.0
    installation_token_ttl_seconds: float = 3600.0
    registration_token_ttl_seconds: float = 3600.0
    mq_token_ttl_seconds: float = 3600.0
    faults: FaultSettings = field(default_factory=FaultSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    # Keep every credential issued (test suites scan their output for them); off for servers.
    record_secrets: bool = False

    def __post_init__(self) -> None:
        durations = {
            "long_poll_seconds": self.long_poll_seconds,
            "assign_timeout_seconds": self.assign_timeout_seconds,
            "session_ttl_seconds": self.session_ttl_seconds,
            "admin_token_ttl_seconds": self.admin_token_ttl_seconds,
            "installation_token_ttl_seconds": self.installation_token_ttl_seconds,
            "registration_token_ttl_seconds": self.registration_token_ttl_seconds,
            "mq_token_ttl_seconds": self.mq_token_ttl_seconds,
        }
        for name, value in durations.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.max_reassignments < 0:
            raise ValueError("max_reassignments must be >= 0")
        names = [DEFAULT_GROUP.lower(), *(g.lower() for g in self.runner_groups)]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError("runner group names must be non-empty, unique and not 'Default'")
        client_ids = [app.client_id for app in self.apps]
        if len(set(client_ids)) != len(client_ids):
            raise ValueError("GitHub App client IDs must be unique")
