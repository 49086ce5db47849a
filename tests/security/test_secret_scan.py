"""The suite-wide secret scan (``tests/fixtures/secret_scan.py``) fails the tests that leak.

An inner pytest run in a subprocess (its own plugin state) holds one test per place a secret
can show up, plus tests that must still pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import jwt
import pytest

from tests.fixtures.sim import SIM_PAT

pytest_plugins = ["pytester"]

_ROOT = Path(__file__).resolve().parents[2]
_SAMPLE_JWT = jwt.encode({"sub": "runner", "exp": 4102444800}, "k" * 32, algorithm="HS256")

_INNER = f"""
import logging

import httpx
import prometheus_client
import pytest

from gha_scalesets.simulator.jit import JitConfig
from gha_scalesets.simulator.testing import SimulatorServer

PAT = {SIM_PAT!r}


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(pats=[PAT]) as server:
        yield server


def registration_token(server):
    response = httpx.post(
        f"{{server.api_url}}/orgs/acme/actions/runners/registration-token",
        headers={{"Authorization": f"Bearer {{PAT}}"}},
    )
    return response.json()["token"]


def test_prints_a_registration_token(sim):
    print("registered with", registration_token(sim))


def test_prints_a_token_of_a_simulator_it_closed():
    with SimulatorServer(pats=[PAT]) as server:
        token = registration_token(server)
    print("registered with", token)


def test_logs_a_pat_at_info():
    logging.getLogger("scaleset.auth").info("authenticating with %s", PAT)


def test_expects_an_error_that_carries_a_pat():
    with pytest.raises(RuntimeError):
        raise RuntimeError(f"refused {{PAT}}")


@pytest.fixture
def leaves_a_jit_config(tmp_path):
    yield
    (tmp_path / "runner.env").write_text(JitConfig("http://x", 2, "r", 1, "s").encode())


def test_whose_fixture_leaves_a_jit_config(leaves_a_jit_config):
    pass


def test_writes_a_jit_config(tmp_path):
    (tmp_path / "state" / "runner.env").parent.mkdir()
    (tmp_path / "state" / "runner.env").write_text(JitConfig("http://x", 1, "r", 1, "s").encode())


def test_puts_a_pat_in_a_metric_label():
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("calls", "calls", ["who"], registry=registry).labels(PAT).inc()


def test_raises_with_a_jwt():
    raise RuntimeError("refused {_SAMPLE_JWT}")


def test_declares_its_secret_input(tmp_path, secret_input):
    secret_input(tmp_path / "token").write_text(PAT)
    print("read the token from", tmp_path / "token")


@pytest.mark.allow_secret_output(reason="the scan's own self-test")
def test_allowed_to_print_it():
    print(PAT)
"""


@pytest.fixture
def inner_run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_inner=_INNER)
    pytester.makeconftest('pytest_plugins = ["tests.fixtures.secret_scan"]\n')
    pythonpath = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
    pytester._monkeypatch.setenv("PYTHONPATH", pythonpath)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfE", "-vv")


def test_each_leak_fails_its_test_and_names_kind_and_place(inner_run: pytest.RunResult) -> None:
    inner_run.assert_outcomes(failed=7, errors=1, passed=3)
    output = inner_run.stdout.str()
    for test, leak in [
        ("prints_a_registration_token", "issued token or runner secret in captured stdout call"),
        ("writes_a_jit_config", "JIT config in file state/runner.env"),
        ("puts_a_pat_in_a_metric_label", "test credential in metrics"),
        ("raises_with_a_jwt", "JWT in failure text"),
        ("token_of_a_simulator_it_closed", "issued token or runner secret in captured stdout"),
        ("error_that_carries_a_pat", "test credential in exception caught by pytest.raises"),
        ("logs_a_pat_at_info", "test credential in captured log call"),
        ("fixture_leaves_a_jit_config", "JIT config in file runner.env"),
    ]:
        assert any(test in line and leak in line for line in output.splitlines()), (test, leak)


def test_the_report_withholds_the_values(inner_run: pytest.RunResult) -> None:
    output = inner_run.stdout.str() + inner_run.stderr.str()
    assert SIM_PAT not in output and _SAMPLE_JWT not in output
    assert "withheld" in output
