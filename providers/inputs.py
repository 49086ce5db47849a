"""Offline validation and normalisation of ScaleSet inputs (the provider's ``check``).

Every rule here runs before any API call, so ``pulumi preview`` stops on a typo with a message that
names the property and says how to fix it. Values unknown at preview are passed through unchecked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from gha_scalesets.providers import props as p
from gha_scalesets.scaleset import (
    AppCredentials,
    ConfigUrlError,
    CredentialsError,
    parse_config_url,
)
from gha_scalesets.scaleset.network import NetworkSettings, ProxyRouter, ssl_context

# The cap of ARC's Helm chart: names stay portable between ARC and this project, and runner
# names derived from them (name plus a suffix) stay short.
MAX_NAME_LENGTH = 45
MAX_LABEL_LENGTH = 256
MAX_GROUP_LENGTH = 256
MAX_LABELS = 100


KeyName = Callable[[str], str]
"""How a message names a property: as is here, as a stack config key in the project's program."""


def same_name(path: str) -> str:
    return path


@dataclass
class Checked:
    """Normalised inputs plus the failures found, as (property, reason) pairs."""

    inputs: dict[str, Any] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    key: KeyName = same_name

    def fail(self, prop: str, reason: str) -> None:
        self.failures.append((prop, reason))


def _text_problem(value: Any, max_length: int, what: str = "") -> str | None:
    """Why ``value`` is not a usable name/label, or None; ``what`` prefixes the value."""
    if not isinstance(value, str):
        return f"{what}must be a string, got {type(value).__name__}"
    if not value:
        return f"{what}must not be empty"
    if value != value.strip():
        return f"{what}{value!r} must not start or end with whitespace"
    if len(value) > max_length:
        return f"{what}{value[:20]!r}… is {len(value)} characters long; the limit is {max_length}"
    if "," in value:
        return f"{what}{value!r} must not contain a comma (runners read labels as a comma list)"
    if any(not ch.isprintable() for ch in value):
        return f"{what}{value!r} must not contain control characters"
    return None


def check_config_url(value: Any, out: Checked) -> None:
    if p.is_unknown(value):
        out.inputs[p.GITHUB_CONFIG_URL] = value
        return
    if not isinstance(value, str) or not value.strip():
        out.fail(
            p.GITHUB_CONFIG_URL,
            "required, e.g. https://github.com/<org>, "
            "https://github.com/<owner>/<repo> or https://github.com/enterprises/<slug>",
        )
        return
    try:
        parsed = parse_config_url(value)
    except ConfigUrlError as exc:
        out.fail(p.GITHUB_CONFIG_URL, str(exc))
        return
    out.inputs[p.GITHUB_CONFIG_URL] = parsed.url


def _check_name(value: Any, out: Checked) -> None:
    if value is None:
        out.fail(p.NAME, "required: the scale set's name, which workflows use in runs-on")
        return
    if not p.is_unknown(value) and (problem := _text_problem(value, MAX_NAME_LENGTH)):
        out.fail(p.NAME, problem)
    out.inputs[p.NAME] = value


def _check_runner_group(value: Any, out: Checked) -> None:
    if value is None:
        value = p.DEFAULT_RUNNER_GROUP
    elif not p.is_unknown(value) and (problem := _text_problem(value, MAX_GROUP_LENGTH)):
        out.fail(p.RUNNER_GROUP, problem)
    out.inputs[p.RUNNER_GROUP] = value


def _check_labels(value: Any, name: Any, out: Checked) -> None:
    # Without labels the service's only label is the scale set name; saying so here keeps the
    # stored inputs equal to what GitHub reports, so the next diff is empty.
    if value is None or value == []:
        out.inputs[p.LABELS] = [name]
        return
    out.inputs[p.LABELS] = value
    if p.is_unknown(value) and not isinstance(value, list):
        return
    if not isinstance(value, list):
        out.fail(p.LABELS, f"must be a list of strings, got {type(value).__name__}")
        return
    if len(value) > MAX_LABELS:
        out.fail(p.LABELS, f"{len(value)} labels given; the limit is {MAX_LABELS}")
    seen: set[str] = set()
    for label in value:
        if p.is_unknown(label):
            continue
        if problem := _text_problem(label, MAX_LABEL_LENGTH, "label "):
            out.fail(p.LABELS, problem)
        elif label.casefold() in seen:
            out.fail(p.LABELS, f"label {label!r} is listed twice (labels are case-insensitive)")
        else:
            seen.add(label.casefold())


def _check_flag(prop: str, value: Any, out: Checked) -> None:
    """A boolean input that defaults to false."""
    if value is None:
        value = False
    elif not p.is_unknown(value) and not isinstance(value, bool):
        out.fail(prop, f"must be true or false, got {value!r}")
    out.inputs[prop] = value


def _as_int(value: Any) -> int | None:
    """Integers arrive as floats over the wire (7.0); accept those and numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _app_problems(app: dict[str, Any], key: KeyName) -> list[tuple[str, str]]:
    """Why a github_app object is unusable, as (property, reason); normalises client_id and
    installation_id in place."""
    keys = (p.APP_CLIENT_ID, p.APP_INSTALLATION_ID, p.APP_PRIVATE_KEY)
    paths = {k: f"{p.GITHUB_APP}.{k}" for k in keys}
    if missing := [k for k in keys if app.get(k) is None]:
        return [(paths[k], f"required with {key(p.GITHUB_APP)}") for k in missing]
    problems = []
    client_id, installation_id, private_key = (app[k] for k in keys)
    if not p.is_unknown(client_id):
        if (numeric := _as_int(client_id)) is not None:
            app[p.APP_CLIENT_ID] = client_id = str(numeric)
        if not isinstance(client_id, str) or not client_id.strip():
            problems.append((paths[p.APP_CLIENT_ID], "must be the App's client ID (or App ID)"))
    if not p.is_unknown(installation_id):
        number = _as_int(installation_id)
        if number is None or number <= 0:
            problems.append(
                (
                    paths[p.APP_INSTALLATION_ID],
                    "must be a positive integer (the number at the end of the installation's"
                    " settings URL)",
                )
            )
        else:
            app[p.APP_INSTALLATION_ID] = installation_id = number
    if problems or p.is_unknown(private_key) or p.is_unknown(app):
        return problems
    if not isinstance(private_key, str):
        return [(paths[p.APP_PRIVATE_KEY], "must be the PEM text of the App's private key")]
    try:
        AppCredentials(client_id, installation_id, SecretStr(private_key))
    except CredentialsError as exc:
        return [(paths[p.APP_PRIVATE_KEY], str(exc))]
    return []


def _check_app(app: Any, out: Checked) -> None:
    if not isinstance(app, dict):
        out.fail(p.GITHUB_APP, "must be an object with client_id, installation_id and private_key")
        return
    app = dict(app)
    for prop, problem in _app_problems(app, out.key):
        out.fail(prop, problem)
    out.inputs[p.GITHUB_APP] = app


def check_credentials(token: Any, app: Any, out: Checked) -> None:
    """Exactly one of a token and a GitHub App, each usable; shared with the component."""
    token_key, app_key = out.key(p.GITHUB_TOKEN), out.key(p.GITHUB_APP)
    if token is not None and app is not None:
        out.fail(p.GITHUB_APP, f"give exactly one of {token_key} or {app_key}: remove one")
    elif token is None and app is None:
        out.fail(
            p.GITHUB_TOKEN,
            f"a credential is required: {token_key} (a PAT with admin:org, repo or"
            f" manage_runners:enterprise) or {app_key} (an App installation)",
        )
    if token is not None:
        if not p.is_unknown(token) and (not isinstance(token, str) or not token.strip()):
            out.fail(p.GITHUB_TOKEN, "must be a non-empty string")
        out.inputs[p.GITHUB_TOKEN] = token
    if app is not None:
        if p.is_unknown(app) and not isinstance(app, dict):
            out.inputs[p.GITHUB_APP] = app
        else:
            _check_app(app, out)


def check_network(proxy: Any, ca_bundle: Any, out: Checked) -> None:
    for prop, value in ((p.PROXY, proxy), (p.CA_BUNDLE, ca_bundle)):
        if value is None:
            continue
        out.inputs[prop] = value
        if p.is_unknown(value):
            continue
        if not isinstance(value, str) or not value.strip():
            out.fail(prop, "must be a non-empty string")
            continue
        try:
            if prop == p.PROXY:
                ProxyRouter(NetworkSettings(proxy=value, trust_env=False))
            else:
                ssl_context(NetworkSettings(ca_bundle=value, trust_env=False))
        except ValueError as exc:  # the message never holds the proxy's password
            out.fail(prop, str(exc).removeprefix(f"{prop}: "))


def check_inputs(news: dict[str, Any], key: KeyName = same_name) -> Checked:
    """Validate and normalise new inputs; defaults are filled in so diffs compare like with like.

    ``key`` names the properties that messages refer to.
    """
    news = p.plain(news)
    out = Checked(key=key)
    check_config_url(news.get(p.GITHUB_CONFIG_URL), out)
    _check_name(news.get(p.NAME), out)
    _check_runner_group(news.get(p.RUNNER_GROUP), out)
    _check_labels(news.get(p.LABELS), news.get(p.NAME), out)
    _check_flag(p.DISABLE_UPDATE, news.get(p.DISABLE_UPDATE), out)
    check_credentials(news.get(p.GITHUB_TOKEN), news.get(p.GITHUB_APP), out)
    _check_flag(p.ADOPT_EXISTING, news.get(p.ADOPT_EXISTING), out)
    check_network(news.get(p.PROXY), news.get(p.CA_BUNDLE), out)
    return out
