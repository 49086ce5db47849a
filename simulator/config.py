"""Simulator settings: credentials it accepts, timings, mode and initial faults.

:class:`SimulatorConfig` is the one definition: ``python -m gha_scalesets.simulator`` derives
its options from the fields (name, default, description), and
:class:`simulator.testing.SimulatorServer` takes the same fields as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


def _seconds(default: float, description: str) -> Any:
    return Field(default, gt=0, description=description)


class SimulatorConfig(BaseModel):
    """Everything that shapes one simulator instance. Durations are in seconds.

    A field's ``option`` (``json_schema_extra``) is its command-line name where that differs
    (``--pat`` for ``pats``); ``cli: False`` keeps it off the command line.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    pats: tuple[str, ...] = Field(
        (), repr=False, description="Accepted personal access token (repeatable).",
        json_schema_extra={"option": "pat"},
    )  # fmt: skip
    unscoped_pats: tuple[str, ...] = Field(
        (), repr=False,
        description="Valid token lacking the runner-admin scope: 403 (repeatable).",
        json_schema_extra={"option": "unscoped_pat"},
    )  # fmt: skip
    apps: tuple[AppCredential, ...] = Field(
        (),
        description="Trusted GitHub App as CLIENT_ID:INSTALLATION_ID:PEM_FILE; the PEM may be the"
        " private key (repeatable).",
        json_schema_extra={"option": "app"},
    )
    runner_groups: tuple[str, ...] = Field(
        (), description="Extra runner group besides Default (repeatable).",
        json_schema_extra={"option": "runner_group"},
    )  # fmt: skip
    long_poll_seconds: float = _seconds(50.0, "Message-queue hold before 202.")
    # A replay in virtual time raises it, so that idle runners cost no CPU.
    runner_hold_seconds: float | None = Field(
        None,
        gt=0,
        description="How long the runner emulator's job poll is held (default: the long poll,"
        " at most 20 s).",
    )
    assign_timeout_seconds: float = _seconds(
        300.0, "Reassign a job no runner took within this (doubles each time)."
    )
    max_reassignments: int = Field(3, ge=0, description="Reassignments before canceling.")
    session_ttl_seconds: float = _seconds(
        120.0, "A silent session owner loses the session after this."
    )
    ghes_acquire: bool = Field(
        False, description="Emit JobAvailable that listeners must acquire (GHES mode)."
    )
    seed: int = Field(0, description="Seed of every random choice.")
    admin_token_ttl_seconds: float = _seconds(3600.0, "Lifetime of runner admin tokens.")
    installation_token_ttl_seconds: float = _seconds(
        3600.0, "Lifetime of GitHub App installation tokens."
    )
    registration_token_ttl_seconds: float = _seconds(
        3600.0, "Lifetime of runner registration tokens."
    )
    mq_token_ttl_seconds: float = _seconds(3600.0, "Lifetime of message-queue tokens.")
    faults: FaultSettings = Field(default_factory=FaultSettings)
    limits: LimitSettings = Field(
        default_factory=LimitSettings,
        description="Rate limits per route class and credential as JSON, e.g. "
        '{"classes": {"jit": {"points_per_window": 900}}} (off by default).',
    )
    # Keep every credential issued (test suites scan their output for them); off for servers.
    record_secrets: bool = Field(False, json_schema_extra={"cli": False})

    @property
    def runner_hold(self) -> float:
        """The runner emulator's job-poll hold (see ``runner_hold_seconds``)."""
        if self.runner_hold_seconds is not None:
            return self.runner_hold_seconds
        return min(self.long_poll_seconds, 20.0)

    @field_validator("apps", mode="before")
    @classmethod
    def _apps_from_pem(cls, apps: Any) -> Any:
        """(client id, installation id, PEM) triples become trusted Apps."""
        return tuple(
            a if isinstance(a, AppCredential) else AppCredential.from_pem(*a) for a in apps
        )

    @model_validator(mode="after")
    def _unique_names(self) -> SimulatorConfig:
        names = [DEFAULT_GROUP.lower(), *(g.lower() for g in self.runner_groups)]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError("runner group names must be non-empty, unique and not 'Default'")
        client_ids = [app.client_id for app in self.apps]
        if len(set(client_ids)) != len(client_ids):
            raise ValueError("GitHub App client IDs must be unique")
        return self
