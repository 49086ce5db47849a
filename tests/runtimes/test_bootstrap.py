"""The runner-side scripts (EC2 user data, ECS entrypoint) run in bash against moto's SSM.

The machine's own tools are replaced by small stand-ins on PATH: ``curl`` plays IMDSv2 (a
token is required for metadata) and the ECS task metadata endpoint, ``aws`` does the two SSM
calls against moto, ``runuser`` and ``shutdown`` record what they were asked, ``sleep`` records
its wait without waiting (and, when told, is when the listener's late write lands). ``run.sh``
records what the runner would have received. Everything else (quoting, ordering, retries, error
handling) is the real script.
"""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gha_scalesets.contract.boot import (
    JIT_READ_ATTEMPTS,
    JIT_READ_MAX_WAIT_SECONDS,
    runner_entrypoint,
    runner_user_data,
)
from gha_scalesets.contract.network import no_proxy_list, proxy_environment
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.network import PrivateCa
from tests.support.runtimes import jit_config

_CURL = """#!/bin/bash
for arg in "$@"; do [[ "$arg" == http://* ]] && url="$arg"; done
token_ok() { [[ "$*" == *"X-aws-ec2-metadata-token: tok"* ]]; }
case "$url" in
  */api/token) [[ " $* " == *" -X PUT "* ]] && printf tok ;;
  */meta-data/instance-id) token_ok "$@" && printf '%s' "$FAKE_INSTANCE_ID" ;;
  */meta-data/tags/instance/gha-scaleset-id) token_ok "$@" && printf '%s' "$FAKE_SCALE_SET_ID" ;;
  "$ECS_CONTAINER_METADATA_URI_V4/task")
    printf '{"Cluster":"runners","TaskARN":"%s","Family":"runner"}' "$FAKE_TASK_ARN" ;;
  *) false ;;
esac || exit 22
"""
_AWS = """#!{python} -S
import json, os, sys, urllib.request
args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]
with open(os.path.join(os.environ["FAKE_DIR"], "aws.log"), "a") as log:
    log.write(" ".join(args) + "\\n")
def ssm(action, **body):
    # The SSM JSON protocol, straight to moto (it does not check signatures).
    scope = "Credential=testing/20240101/us-east-1/ssm/aws4_request, SignedHeaders=host"
    request = urllib.request.Request(os.environ["AWS_ENDPOINT_URL"], json.dumps(body).encode(), {
        "X-Amz-Target": "AmazonSSM." + action,
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 " + scope + ", Signature=0",
    })
    with urllib.request.urlopen(request) as response:
        return json.load(response)
if args[:2] == ["ssm", "get-parameter"] and "--with-decryption" in args:
    print(ssm("GetParameter", Name=opt("--name"), WithDecryption=True)["Parameter"]["Value"])
elif args[:2] == ["ssm", "delete-parameter"]:
    ssm("DeleteParameter", Name=opt("--name"))
else:
    sys.exit("unexpected aws call")
"""
_SLEEP = """#!{python} -S
import json, os, sys, urllib.request
log = os.path.join(os.environ["FAKE_DIR"], "sleeps")
with open(log, "a") as out:
    out.write(sys.argv[1] + "\\n")
late = os.environ.get("FAKE_LATE_PARAMETER")  # name=value, written at the sleep numbered ...
if late and len(open(log).read().split()) == int(os.environ["FAKE_LATE_AT_SLEEP"]):
    name, value = late.split("=", 1)
    body = json.dumps({"Name": name, "Value": value, "Type": "SecureString"}).encode()
    scope = "Credential=testing/20240101/us-east-1/ssm/aws4_request, SignedHeaders=host"
    urllib.request.urlopen(urllib.request.Request(os.environ["AWS_ENDPOINT_URL"], body, {
        "X-Amz-Target": "AmazonSSM.PutParameter",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 " + scope + ", Signature=0",
    })).read()
"""
_RUNUSER = """#!/bin/bash
[ "$1" = -u ] && [ "$3" = -- ] || exit 2
printf '%s' "$2" > "$FAKE_DIR/runuser"
shift 3
exec "$@"
"""
_SHUTDOWN = """#!/bin/bash
printf '%s' "$*" > "$FAKE_DIR/shutdown"
"""
_RUN_SH = """#!/bin/bash
printf '%s' "$ACTIONS_RUNNER_INPUT_JITCONFIG" > "$FAKE_DIR/jit"
printf '%s' "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI-unset}" > "$FAKE_DIR/credentials"
printf '%s' "${GHA_JIT_PARAMETER_PATH-unset} ${PARAM-unset}" > "$FAKE_DIR/parameter"
printf '%s' "${HTTPS_PROXY-unset} ${NO_PROXY-unset}" > "$FAKE_DIR/proxy"
printf '%s' "${SSL_CERT_FILE-unset} ${NODE_EXTRA_CA_CERTS-unset}" > "$FAKE_DIR/ca_vars"
printf '%s' "${GHA_SCALESETS_CA_PEM-unset}" > "$FAKE_DIR/ca_pem"
"""


@dataclass
class Host:
    """A directory of stand-in tools and a runner directory, plus how to run a script."""

    dir: Path
    runner_dir: Path

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        path = self.write("script.sh", script)
        environ = (
            os.environ
            | env
            | {"FAKE_DIR": str(self.dir), "PATH": f"{self.dir / 'bin'}:{os.environ['PATH']}"}
        )
        # bash -x: tracing requested from outside must still not reveal the JIT config.
        return subprocess.run(
            ["bash", "-x", str(path)], env=environ, capture_output=True, text=True, timeout=60
        )

    def recorded(self, name: str) -> str | None:
        path = self.dir / name
        return path.read_text() if path.exists() else None


@pytest.fixture
def host(tmp_path: Path, aws: str) -> Host:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runner_dir = tmp_path / "actions-runner"
    runner_dir.mkdir()
    h = Host(tmp_path, runner_dir)
    for name, text in [
        ("curl", _CURL),
        ("aws", _AWS.replace("{python}", sys.executable)),
        ("sleep", _SLEEP.replace("{python}", sys.executable)),
        ("runuser", _RUNUSER),
        ("shutdown", _SHUTDOWN),
    ]:
        h.write(f"bin/{name}", text)
    h.write("actions-runner/run.sh", _RUN_SH)
    return h


def _exists(ssm: Any, name: str) -> bool:
    return bool(ssm.get_parameters(Names=[name])["Parameters"])


def test_user_data_reads_own_parameter_deletes_it_and_powers_off(
    host: Host, boto_client: Any
) -> None:
    ssm = boto_client("ssm")
    secret = jit_config("linux-x64-00001")
    name = "/gha-scalesets/jit/7/i-0abc1234def567890"
    ssm.put_parameter(Name=name, Value=secret, Type="SecureString")
    script = runner_user_data("/gha-scalesets/jit/", "us-east-1", runner_dir=str(host.runner_dir))

    done = host.run(script, FAKE_INSTANCE_ID="i-0abc1234def567890", FAKE_SCALE_SET_ID="7")

    assert done.returncode == 0, done.stderr
    assert host.recorded("jit") == secret
    assert host.recorded("runuser") == "runner"
    assert host.recorded("shutdown") == "-h now"
    assert not _exists(ssm, name)  # read once, then gone
    assert f"ssm get-parameter --region us-east-1 --with-decryption --name {name}" in host.recorded(
        "aws.log"
    )
    assert secret not in done.stdout + done.stderr
    assert secret not in script


def _sleeps(host: Host) -> list[int]:
    return [int(s) for s in (host.recorded("sleeps") or "").split()]


def test_user_data_waits_for_a_parameter_written_after_it_booted(
    host: Host, boto_client: Any
) -> None:
    # A fast boot reads before the listener wrote the parameter: the read is retried with
    # full-jitter backoff, and the write lands during the second wait.
    secret = jit_config("linux-x64-00003")
    name = "/gha-scalesets/jit/7/i-0abc1234def567890"
    script = runner_user_data("/gha-scalesets/jit", "us-east-1", runner_dir=str(host.runner_dir))

    done = host.run(
        script,
        FAKE_INSTANCE_ID="i-0abc1234def567890",
        FAKE_SCALE_SET_ID="7",
        FAKE_LATE_PARAMETER=f"{name}={secret}",
        FAKE_LATE_AT_SLEEP="2",
    )

    assert done.returncode == 0, done.stderr
    assert host.recorded("jit") == secret
    assert host.recorded("aws.log").count("ssm get-parameter") == 3
    first, second = _sleeps(host)
    assert 1 <= first <= 2 and 1 <= second <= 4  # caps 2 s, then 4 s
    assert not _exists(boto_client("ssm"), name)
    assert secret not in done.stdout + done.stderr


def test_user_data_gives_up_after_bounded_retries_and_powers_off(host: Host) -> None:
    script = runner_user_data("/gha-scalesets/jit", "us-east-1", runner_dir=str(host.runner_dir))

    done = host.run(script, FAKE_INSTANCE_ID="i-0abc1234def567890", FAKE_SCALE_SET_ID="7")

    assert done.returncode != 0
    assert host.recorded("aws.log").count("ssm get-parameter") == JIT_READ_ATTEMPTS
    waits = _sleeps(host)
    caps = [min(2**attempt, JIT_READ_MAX_WAIT_SECONDS) for attempt in range(1, JIT_READ_ATTEMPTS)]
    assert len(waits) == len(caps) and all(1 <= w <= c for w, c in zip(waits, caps, strict=True))
    assert sum(caps) <= 180  # bounded: about three minutes at worst
    assert "no JIT config in /gha-scalesets/jit/7/i-0abc1234def567890 after" in done.stderr
    assert host.recorded("jit") is None  # the runner never started
    assert host.recorded("shutdown") == "-h now"  # and the instance does not linger


def _ecs_env(path: str, task_id: str, **more: str) -> dict[str, str]:
    return {
        "GHA_JIT_PARAMETER_PATH": path,
        "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/c0ffee",
        "FAKE_TASK_ARN": f"arn:aws:ecs:us-east-1:123456789012:task/runners/{task_id}",
        **more,
    }


def test_ecs_entrypoint_reads_its_task_parameter_and_drops_task_credentials(
    host: Host, boto_client: Any
) -> None:
    ssm = boto_client("ssm")
    secret = jit_config("linux-x64-00002")
    name = "/gha-scalesets/jit/7/0123456789abcdef0123456789abcdef"
    ssm.put_parameter(Name=name, Value=secret, Type="SecureString")
    script = runner_entrypoint(runner_command=str(host.runner_dir / "run.sh"))

    done = host.run(
        script,
        **_ecs_env(
            "/gha-scalesets/jit/7",
            "0123456789abcdef0123456789abcdef",
            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/v2/credentials/x",
        ),
    )

    assert done.returncode == 0, done.stderr
    assert host.recorded("jit") == secret
    assert host.recorded("credentials") == "unset"  # job steps cannot get task-role keys
    assert host.recorded("parameter") == "unset unset"
    assert not _exists(ssm, name)
    assert secret not in done.stdout + done.stderr


def test_ecs_entrypoint_refuses_to_start_without_a_parameter_path(host: Host) -> None:
    done = host.run(runner_entrypoint(runner_command=str(host.runner_dir / "run.sh")))

    assert done.returncode != 0
    assert "GHA_JIT_PARAMETER_PATH" in done.stderr
    assert host.recorded("jit") is None


def _trusts(bundle: str, server: SimulatorServer) -> bool:
    context = ssl.create_default_context(cafile=bundle)
    with httpx.Client(verify=context, trust_env=False) as http:
        return http.get(f"{server.url}/_sim/stats").status_code == 200


def test_runners_get_the_proxy_and_trust_the_private_ca(
    host: Host, boto_client: Any, private_ca: PrivateCa, tls_sim: SimulatorServer
) -> None:
    ssm = boto_client("ssm")
    ssm.put_parameter(Name="/jit/7/i-1", Value=jit_config("r-1"), Type="SecureString")
    ssm.put_parameter(Name="/jit/7/r-2", Value=jit_config("r-2"), Type="SecureString")
    network = proxy_environment("http://proxy.corp:3128", no_proxy_list("ghes.corp"))
    ca_dir = host.dir / "ca"
    user_data = runner_user_data(
        "/jit",
        "us-east-1",
        runner_dir=str(host.runner_dir),
        network_env=network,
        ca_pem=private_ca.ca_pem,
        ca_dir=str(ca_dir),
    )
    ecs = runner_entrypoint(runner_command=str(host.runner_dir / "run.sh"))
    runs = [
        (user_data, {"FAKE_INSTANCE_ID": "i-1", "FAKE_SCALE_SET_ID": "7"}, ca_dir),
        # ECS: the task definition holds the variables; the runner user writes under $HOME
        (
            ecs,
            network
            | _ecs_env("/jit/7", "r-2", GHA_SCALESETS_CA_PEM=private_ca.ca_pem)
            | {"HOME": str(host.dir / "home")},
            host.dir / "home" / ".gha-scalesets-ca",
        ),
    ]
    for script, env, expected_dir in runs:
        done = host.run(script, **env)
        assert done.returncode == 0, done.stderr
        no_proxy = "localhost,127.0.0.1,169.254.169.254,169.254.170.2,ghes.corp"
        assert host.recorded("proxy") == f"http://proxy.corp:3128 {no_proxy}"
        bundle, extra = (host.recorded("ca_vars") or "").split()
        assert (bundle, extra) == (f"{expected_dir}/bundle.pem", f"{expected_dir}/ca.pem")
        assert host.recorded("ca_pem") == "unset"  # the text itself is not handed on
        assert Path(extra).read_text().strip() == private_ca.ca_pem.strip()
        assert _trusts(bundle, tls_sim)  # the bundle trusts the private CA ...
        assert Path(bundle).stat().st_size > 2 * len(private_ca.ca_pem)  # ... and public roots
