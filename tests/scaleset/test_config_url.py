"""Config URL parsing (reference §2.1)."""

import pytest

from gha_scalesets.scaleset import ConfigUrlError, Scope, parse_config_url


@pytest.mark.parametrize(
    ("url", "scope", "api_base", "registration_path"),
    [
        (
            "https://github.com/acme",
            Scope.ORGANIZATION,
            "https://api.github.com",
            "orgs/acme/actions/runners/registration-token",
        ),
        (
            "https://www.github.com/acme/app/",
            Scope.REPOSITORY,
            "https://api.github.com",
            "repos/acme/app/actions/runners/registration-token",
        ),
        (
            "https://github.com/Enterprises/big-co",
            Scope.ENTERPRISE,
            "https://api.github.com",
            "enterprises/big-co/actions/runners/registration-token",
        ),
        (
            "https://tenant.ghe.com/acme",
            Scope.ORGANIZATION,
            "https://api.tenant.ghe.com",
            "orgs/acme/actions/runners/registration-token",
        ),
        (
            "http://ghes.example:8443/acme/app",
            Scope.REPOSITORY,
            "http://ghes.example:8443/api/v3",
            "repos/acme/app/actions/runners/registration-token",
        ),
        (
            "https://GitHub.localhost/acme",
            Scope.ORGANIZATION,
            "https://api.github.localhost",
            "orgs/acme/actions/runners/registration-token",
        ),
    ],
)
def test_parses_scopes_and_api_base(
    url: str, scope: Scope, api_base: str, registration_path: str
) -> None:
    parsed = parse_config_url(url)
    assert parsed.scope is scope
    assert parsed.api_base == api_base
    assert parsed.registration_token_path == registration_path
    assert parsed.url == url.strip("/")


def test_force_ghes_env_makes_github_com_ghes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS_FORCE_GHES", "")
    parsed = parse_config_url("https://github.com/acme")
    assert not parsed.is_hosted
    assert parsed.api_base == "https://github.com/api/v3"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("https://github.com", "should point to an enterprise"),
        ("https://github.com/a/b/c", "should point to an enterprise"),
        ("github.com/acme", "expected an http"),
        ("ftp://github.com/acme", "expected an http"),
        ("https://github.com/acme?x=1", "query string"),
        ("https://github.com:notaport/acme", "invalid config URL"),
    ],
)
def test_rejects_bad_urls_with_clear_errors(url: str, needle: str) -> None:
    with pytest.raises(ConfigUrlError, match=needle) as info:
        parse_config_url(url)
    assert isinstance(info.value, ValueError)


def test_error_never_echoes_embedded_credentials() -> None:
    with pytest.raises(ConfigUrlError) as info:
        parse_config_url("https://x-access-token:ghp_secret123@github.com/acme")
    assert "ghp_secret123" not in str(info.value)
    with pytest.raises(ConfigUrlError) as info:
        parse_config_url("ftp://user:ghp_secret123@github.com/a/b/c")
    assert "ghp_secret123" not in str(info.value)
