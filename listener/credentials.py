"""The ``credentials`` settings as scaleset credentials (file, inline, App, Secrets Manager).

One source or several; a Secrets Manager secret may itself hold several credentials.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import SecretStr

from gha_scalesets.listener.aws import AWS_ERRORS, call, error_code, make_client
from gha_scalesets.listener.config import AwsConfig, CredentialsConfig
from gha_scalesets.listener.retries import default_retry
from gha_scalesets.scaleset.credentials import AppCredentials, Credentials, PatCredentials


class CredentialsLoadError(Exception):
    """The configured credentials could not be read; the message says which source and why."""


def _read_file(path: Path, what: str) -> SecretStr:
    try:
        return SecretStr(path.read_text().strip())
    except OSError as exc:
        raise CredentialsLoadError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def _one_from_json(data: Any) -> Credentials | None:
    """``{"github_token"}`` or ``{"github_app": {...}}`` (with an optional ``name``)."""
    if not isinstance(data, dict):
        return None
    name = data.get("name") if isinstance(data.get("name"), str) else None
    if isinstance(data.get("github_token"), str):
        return PatCredentials(SecretStr(data["github_token"]), name=name)
    app = data.get("github_app")
    if isinstance(app, dict) and {"client_id", "installation_id", "private_key"} <= app.keys():
        return AppCredentials(
            str(app["client_id"]),
            app["installation_id"],
            SecretStr(str(app["private_key"])),
            name=name,
        )
    return None


def _from_secret_value(arn: str, raw: str) -> list[Credentials]:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        data = None
    several = data.get("credentials", data) if isinstance(data, dict) else data
    items = several if isinstance(several, list) else [several]
    found = [c for c in map(_one_from_json, items) if c is not None]
    if found and len(found) == len(items):
        return found
    raise CredentialsLoadError(
        f'secret {arn} must hold JSON {{"github_token": ...}}, '
        '{"github_app": {"client_id", "installation_id", "private_key"}} or '
        '{"credentials": [one of those, ...]}'
    )


async def _fetch_secret(arn: str, aws: AwsConfig) -> str:
    client = make_client("secretsmanager", aws, Counter())  # one call at start-up: not exported
    try:
        reply = await call(client, "get_secret_value", default_retry(), SecretId=arn)
        return str(reply["SecretString"])
    except ClientError as exc:
        raise CredentialsLoadError(
            f"cannot read secret {arn} ({error_code(exc)}): does it exist, and may this role "
            "call secretsmanager:GetSecretValue (and kms:Decrypt on its key)?"
        ) from None
    except (*AWS_ERRORS, KeyError) as exc:
        raise CredentialsLoadError(f"cannot read secret {arn}: {type(exc).__name__}") from None
    finally:
        client.close()


def local_credentials(config: CredentialsConfig) -> Credentials | None:
    """The credential given inline or in files, or None for a Secrets Manager secret."""
    if config.token is not None:
        return PatCredentials(config.token)
    if config.token_file is not None:
        return PatCredentials(_read_file(config.token_file, "token"))
    if config.app is not None:
        app = config.app
        if app.private_key_file is not None:
            key = _read_file(app.private_key_file, "GitHub App private key")
        else:
            assert app.private_key is not None  # AppConfig holds exactly one of the two
            key = app.private_key
        return AppCredentials(app.client_id, app.installation_id, key)
    return None


async def _load_source(config: CredentialsConfig, aws: AwsConfig) -> list[Credentials]:
    if (local := local_credentials(config)) is not None:
        return [local]
    arn = str(config.secret_arn)
    return _from_secret_value(arn, await _fetch_secret(arn, aws))


async def load_credentials(sources: list[CredentialsConfig], aws: AwsConfig) -> list[Credentials]:
    """Read every configured credential source (a source's ``name`` labels its credential)."""
    loaded: list[Credentials] = []
    for source in sources:
        found = await _load_source(source, aws)
        if source.name and len(found) == 1:
            found = [dataclasses.replace(found[0], name=source.name)]
        loaded += found
    return loaded
