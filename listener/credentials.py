"""The ``credentials`` settings as scaleset credentials (file, inline, App, Secrets Manager)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from gha_scalesets.listener.config import AwsConfig, CredentialsConfig
from gha_scalesets.scaleset.credentials import AppCredentials, Credentials, PatCredentials


class CredentialsLoadError(Exception):
    """The configured credentials could not be read; the message says which source and why."""


def _read_file(path: Path, what: str) -> SecretStr:
    try:
        return SecretStr(path.read_text().strip())
    except OSError as exc:
        raise CredentialsLoadError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def _from_secret_value(arn: str, raw: str) -> Credentials:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("github_token"), str):
        return PatCredentials(SecretStr(data["github_token"]))
    app = data.get("github_app") if isinstance(data, dict) else None
    if isinstance(app, dict) and {"client_id", "installation_id", "private_key"} <= app.keys():
        return AppCredentials(
            str(app["client_id"]), app["installation_id"], SecretStr(str(app["private_key"]))
        )
    raise CredentialsLoadError(
        f'secret {arn} must hold JSON {{"github_token": ...}} or '
        '{"github_app": {"client_id", "installation_id", "private_key"}}'
    )


def _fetch_secret(arn: str, aws: AwsConfig) -> str:
    client = boto3.client("secretsmanager", region_name=aws.region, endpoint_url=aws.endpoint_url)
    try:
        return client.get_secret_value(SecretId=arn)["SecretString"]
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        raise CredentialsLoadError(
            f"cannot read secret {arn} ({code}): does it exist, and may this role call "
            "secretsmanager:GetSecretValue (and kms:Decrypt on its key)?"
        ) from None
    except (BotoCoreError, KeyError) as exc:
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
        key = app.private_key or _read_file(app.private_key_file, "GitHub App private key")  # type: ignore[arg-type]
        return AppCredentials(app.client_id, app.installation_id, key)
    return None


async def load_credentials(config: CredentialsConfig, aws: AwsConfig) -> Credentials:
    """Read the one configured credential source."""
    if (local := local_credentials(config)) is not None:
        return local
    arn = str(config.secret_arn)
    return _from_secret_value(arn, await asyncio.to_thread(_fetch_secret, arn, aws))
