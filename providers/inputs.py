"""Offline validation and normalisation of ScaleSet inputs (the provider's ``check``).

Every rule here runs before any API call, so ``pulumi preview`` stops on a typo with a message that
names the property and says how to fix it. Values unknown at preview are passed through unchecked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Checked:
    """Normalised inputs plus the failures found, as (property, reason) pairs."""

    inputs: dict[str, Any] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, prop: str, reason: str) -> None:
        self.failures.append((prop, reason))


def _text_problem(value: Any, what: str, max_length: int) -> str | None:
    """Why ``value`` is not a usable name/label, or None."""
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__}"
    if not value:
        return f"{what} must not be empty"
    if value != value.strip():
        return f"{what} {value!r} must not start or end with whitespace"
    if len(value) > max_length:
        return f"{what} {value[:20]!r}… is {len(value)} characters long; the limit is {max_length}"
    if "," in value:
        return f"{what} {value!r} must not contain a comma (runners read labels as a comma list)"
    if any(not ch.isprintable() for ch in value):
        return f"{what} {value!r} must not contain control characters"
    return None


def _check_config_url(value: Any, out: Checked) -> None:
    if p.is_unknown(value):
        out.inputs[p.GITHUB_CONFIG_URL] = value
        return
    if not isinstance(value, str) or not value.strip():
        out.fail(
            p.GITHUB_CONFIG_URL,
            "github_config_url is required, e.g. https://github.com/<org>, "
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
        out.fail(p.NAME, "name is required: the scale set's name, which workflows use in runs-on")
        return
    if not p.is_unknown(value) and (problem := _text_problem(value, "name", MAX_NAME_LENGTH)):
        out.fail(p.NAME, problem)
    out.inputs[p.NAME] = value


def _check_runner_group(value: Any, out: Checked) -> None:
    if value is None:
        value = p.DEFAULT_RUNNER_GROUP
    elif not p.is_unknown(value) and (
        problem := _text_problem(value, "runner_group", MAX_GROUP_LENGTH)
    ):
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
        out.fail(p.LABELS, f"labels must be a list of strings, got {type(value).__name__}")
        return
    if len(value) > MAX_LABELS:
        out.fail(p.LABELS, f"{len(value)} labels given; the limit is {MAX_LABELS}")
    seen: set[str] = set()
    for label in value:
        if p.is_unknown(label):
            continue
        if problem := _text_problem(label, "label", MAX_LABEL_LENGTH):
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
        out.fail(prop, f"{prop} must be true or false, got {value!r}")
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


def _app_problems(app: dict[str, Any]) -> list[str]:
    """Why a github_app object is unusable; normalises client_id and installation_id in place."""
    keys = (p.APP_CLIENT_ID, p.APP_INSTALLATION_ID, p.APP_PRIVATE_KEY)
    if missing := [k for k in keys if app.get(k) is None]:
        return [f"github_app is missing {', '.join(missing)}"]
    problems = []
    client_id, installation_id, key = (app[k] for k in keys)
    if not p.is_unknown(client_id):
        if (numeric := _as_int(client_id)) is not None:
            app[p.APP_CLIENT_ID] = client_id = str(numeric)
        if not isinstance(client_id, str) or not client_id.strip():
            problems.append("github_app.client_id must be the App's client ID (or App ID)")
    if not p.is_unknown(installation_id):
        number = _as_int(installation_id)
        if number is None or number <= 0:
            problems.append(
                "github_app.installation_id must be a positive integer (the number at the end "
                "of the installation's settings URL)"
            )
        else:
            app[p.APP_INSTALLATION_ID] = installation_id = number
    if problems or p.is_unknown(key) or p.is_unknown(app):
        return problems
    if not isinstance(key, str):
        return ["github_app.private_key must be the PEM text of the App's private key"]
    try:
        AppCredentials(client_id, installation_id, key)
    except CredentialsError as exc:
        return [f"github_app.private_key: {exc}"]
    return []


def _check_app(app: Any, out: Checked) -> None:
    if not isinstance(app, dict):
        out.fail(
            p.GITHUB_APP,
            "github_app must be an object with client_id, installation_id and private_key",
        )
        return
    app = dict(app)
    for problem in _app_problems(app):
        out.fail(p.GITHUB_APP, problem)
    out.inputs[p.GITHUB_APP] = app


def _check_credentials(token: Any, app: Any, out: Checked) -> None:
    if token is not None and app is not None:
        out.fail(
            p.GITHUB_APP,
            "set exactly one of github_token or github_app, not both: remove one of them",
        )
    elif token is None and app is None:
        out.fail(
            p.GITHUB_TOKEN,
            "credentials are required: set github_token (a PAT with admin:org, repo or "
            "manage_runners:enterprise) or github_app (client_id, installation_id, private_key)",
        )
    if token is not None:
        if not p.is_unknown(token) and (not isinstance(token, str) or not token.strip()):
            out.fail(p.GITHUB_TOKEN, "github_token must be a non-empty string")
        out.inputs[p.GITHUB_TOKEN] = token
    if app is not None:
        if p.is_unknown(app) and not isinstance(app, dict):
            out.inputs[p.GITHUB_APP] = app
        else:
            _check_app(app, out)


def _check_network(proxy: Any, ca_bundle: Any, out: Checked) -> None:
    for prop, value in ((p.PROXY, proxy), (p.CA_BUNDLE, ca_bundle)):
        if value is None:
            continue
        out.inputs[prop] = value
        if p.is_unknown(value):
            continue
        if not isinstance(value, str) or not value.strip():
            out.fail(prop, f"{prop} must be a non-empty string")
            continue
        try:
            if prop == p.PROXY:
                ProxyRouter(NetworkSettings(proxy=value, trust_env=False))
            else:
                ssl_context(NetworkSettings(ca_bundle=value, trust_env=False))
        except ValueError as exc:  # the message never holds the proxy's password
            out.fail(prop, str(exc))


def check_inputs(news: dict[str, Any]) -> Checked:
    """Validate and normalise new inputs; defaults are filled in so diffs compare like with like."""
    news = p.plain(news)
    out = Checked()
    _check_config_url(news.get(p.GITHUB_CONFIG_URL), out)
    _check_name(news.get(p.NAME), out)
    _check_runner_group(news.get(p.RUNNER_GROUP), out)
    _check_labels(news.get(p.LABELS), news.get(p.NAME), out)
    _check_flag(p.DISABLE_UPDATE, news.get(p.DISABLE_UPDATE), out)
    _check_credentials(news.get(p.GITHUB_TOKEN), news.get(p.GITHUB_APP), out)
    _check_flag(p.ADOPT_EXISTING, news.get(p.ADOPT_EXISTING), out)
    _check_network(news.get(p.PROXY), news.get(p.CA_BUNDLE), out)
    return out
