"""``ScaleSet``: a GitHub Actions runner scale set declared in a Pulumi program."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi import dynamic

from gha_scalesets.config_errors import report
from gha_scalesets.providers import props as p
from gha_scalesets.providers.errors import ScaleSetInputError
from gha_scalesets.providers.inputs import KeyName, check_inputs, same_name
from gha_scalesets.providers.scale_set_provider import ScaleSetProvider


def app_props(app: GitHubAppArgs) -> dict[str, Any]:
    """A GitHub App as the provider's ``github_app`` property."""
    return {
        p.APP_CLIENT_ID: app.client_id,
        p.APP_INSTALLATION_ID: app.installation_id,
        p.APP_PRIVATE_KEY: app.private_key,
    }


@dataclass
class GitHubAppArgs:
    """A GitHub App installation: client ID (or App ID), installation ID and the PEM private key."""

    client_id: pulumi.Input[str]
    installation_id: pulumi.Input[int]
    private_key: pulumi.Input[str] = field(repr=False)


@dataclass
class ScaleSetArgs:
    """Inputs of a :class:`ScaleSet`; give exactly one of ``github_token`` or ``github_app``.

    ``labels`` defaults to ``[name]`` (the service's own default); ``runner_group`` to ``Default``.
    ``adopt_existing`` lets ``pulumi up`` take over a scale set of the declared name that already
    exists in the runner group (converging it to the declaration) instead of failing.
    On a corporate network, ``proxy`` is the proxy URL the provider reaches GitHub through (it
    wins over ``HTTPS_PROXY``; secret, as it may hold credentials) and ``ca_bundle`` the PEM
    text of extra root CAs, e.g. a GHES instance's internal CA (plain: a CA is not secret).
    """

    github_config_url: pulumi.Input[str]
    name: pulumi.Input[str]
    runner_group: pulumi.Input[str] = p.DEFAULT_RUNNER_GROUP
    labels: pulumi.Input[list[pulumi.Input[str]]] | None = None
    disable_update: pulumi.Input[bool] = False
    adopt_existing: pulumi.Input[bool] = False
    github_token: pulumi.Input[str] | None = field(default=None, repr=False)
    github_app: GitHubAppArgs | pulumi.Input[dict[str, Any]] | None = field(
        default=None, repr=False
    )
    proxy: pulumi.Input[str] | None = field(default=None, repr=False)
    ca_bundle: pulumi.Input[str] | None = None

    def problems(self, key: KeyName = same_name) -> list[tuple[str, str]]:
        """What the provider's ``check`` would refuse among the values known now (so Pulumi
        mocks catch it too), as (property, reason); ``key`` names the properties."""
        declared = {prop: p.declared(value) for prop, value in self._inputs().items()}
        checked = check_inputs({k: v for k, v in declared.items() if v is not None}, key)
        return [(key(prop), reason) for prop, reason in checked.failures]

    def _inputs(self) -> dict[str, Any]:
        app = self.github_app
        return {
            p.GITHUB_CONFIG_URL: self.github_config_url,
            p.NAME: self.name,
            p.RUNNER_GROUP: self.runner_group,
            p.LABELS: self.labels,
            p.DISABLE_UPDATE: self.disable_update,
            p.ADOPT_EXISTING: self.adopt_existing,
            p.GITHUB_TOKEN: self.github_token,
            p.GITHUB_APP: app_props(app) if isinstance(app, GitHubAppArgs) else app,
            p.PROXY: self.proxy,
            p.CA_BUNDLE: self.ca_bundle,
        }

    def to_props(self) -> dict[str, Any]:
        """Provider properties; outputs the provider computes are declared as ``None``."""
        inputs = self._inputs()
        # Secret as inputs too (additional_secret_outputs covers only outputs), even when the
        # program passes a plain string.
        secrets = {
            prop: pulumi.Output.secret(inputs[prop])
            for prop in p.SECRET_KEYS
            if inputs[prop] is not None
        }
        return inputs | secrets | dict.fromkeys(p.OUTPUT_KEYS)


class ScaleSet(dynamic.Resource, module="github", name="ScaleSet"):
    """A runner scale set on GitHub (github.com, GHE.com or GHES), managed by this stack.

    Its id is the scale set id; to take over an existing scale set, declare it with
    ``adopt_existing=True`` (Pulumi's ``import_`` option cannot reach dynamic providers,
    pulumi/pulumi#16175). The ``github_token``, ``github_app`` and ``proxy`` outputs are always
    secret. Inputs known when it is declared are checked right away (:class:`ScaleSetInputError`
    lists every problem), the rest by the provider once they resolve.
    """

    github_config_url: pulumi.Output[str]
    name: pulumi.Output[str]
    runner_group: pulumi.Output[str]
    labels: pulumi.Output[list[str]]
    disable_update: pulumi.Output[bool]
    scale_set_id: pulumi.Output[int]
    runner_group_id: pulumi.Output[int]
    runner_group_name: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: ScaleSetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        if problems := args.problems():
            lines = (f"{prop}: {reason}" for prop, reason in problems)
            raise ScaleSetInputError(report(f"invalid ScaleSet {resource_name!r}", lines))
        secret = pulumi.ResourceOptions(additional_secret_outputs=list(p.SECRET_KEYS))
        super().__init__(
            ScaleSetProvider(),
            resource_name,
            args.to_props(),
            pulumi.ResourceOptions.merge(opts, secret),
        )
        # What a listener compares to find a scale set listed twice before names resolve.
        self.declared_name = args.name if isinstance(args.name, str) else None
