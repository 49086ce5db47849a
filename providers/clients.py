"""Scale-set clients for the provider, built from each resource's own properties.

The credential (and proxy and CA) are inputs of each ScaleSet, so clients come from the properties
a CRUD call receives; nothing lives on the pickled provider object. Clients are kept per (config
URL, credential, proxy, CA) for the life of the provider process: concurrent engine calls then
share one event loop, so the token cache's single-flight holds and the auth chain runs once per
process however many scale sets of an org it manages, and HTTP connections are reused.
"""

from __future__ import annotations

import threading
from typing import Any

from gha_scalesets.providers import props as p
from gha_scalesets.providers.errors import ScaleSetProviderError
from gha_scalesets.scaleset import (
    AppCredentials,
    Credentials,
    PatCredentials,
    SyncClient,
    parse_config_url,
)

_clients: dict[tuple[str, str, str | None, str | None], SyncClient] = {}
_lock = threading.Lock()


def credentials_from(props: dict[str, Any]) -> Credentials:
    """The PAT or GitHub App credentials held in checked inputs (or the outputs echoing them)."""
    token = props.get(p.GITHUB_TOKEN)
    if token is not None:
        return PatCredentials(token)
    app = props[p.GITHUB_APP]
    return AppCredentials(
        app[p.APP_CLIENT_ID], int(app[p.APP_INSTALLATION_ID]), app[p.APP_PRIVATE_KEY]
    )


def client_for(props: dict[str, Any]) -> SyncClient:
    """The process's client for the config URL and credential in ``props``."""
    if not props.get(p.GITHUB_CONFIG_URL) or not any(props.get(k) for k in p.CREDENTIAL_KEYS):
        # What an import sends (`pulumi import`, or the import_ option): no inputs at all.
        raise ScaleSetProviderError(
            "the resource has no github_config_url or credentials to call GitHub with: Pulumi "
            "cannot import dynamic-provider resources (pulumi/pulumi#16175); declare the scale "
            "set in the program with adopt_existing=True instead"
        )
    config = parse_config_url(props[p.GITHUB_CONFIG_URL])
    credentials = credentials_from(props)
    proxy, ca_bundle = props.get(p.PROXY), props.get(p.CA_BUNDLE)
    key = (config.url.lower(), credentials.fingerprint, proxy, ca_bundle)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = SyncClient(
                config, credentials, subsystem="provider", proxy=proxy, ca_bundle=ca_bundle
            )
        return client


_group_ids: dict[tuple[str, str], int] = {}
_group_lock = threading.Lock()


def runner_group_id(client: SyncClient, name: str) -> int:
    """The id of runner group ``name``, looked up once per org per provider process.

    A process serves one Pulumi operation, during which group ids do not change; many scale sets
    in one group then cost one lookup instead of one each. Concurrent first calls wait for a
    single lookup (lookups are rare, so one lock for all groups is enough).
    """
    key = (client.config.url.lower(), name.casefold())
    with _group_lock:
        if key not in _group_ids:
            _group_ids[key] = client.get_runner_group_by_name(name).id
        return _group_ids[key]
