"""Proxy and private CA reach the listener and its runners on all three runtimes (mocks)."""

from __future__ import annotations

import base64
import json

import pytest
import trustme
from pulumi.runtime import rpc

from gha_scalesets.components import ListenerConfigError
from tests.support.components import LT, containers, env_file, user_data

PROXY = "http://proxy.corp:3128"
CA_PEM = trustme.CA().cert_pem.bytes().decode()  # the component checks that it is a certificate
NETWORK = {"proxy": PROXY, "no_proxy": "ghes.corp,.internal", "ca_bundle": CA_PEM}
BASE_NO_PROXY = "localhost,127.0.0.1,169.254.169.254,169.254.170.2"


def test_k8s_proxy_in_a_secret_and_the_ca_in_a_config_map(
    deploy, recorder, settings_from_env
) -> None:
    deploy("k8s", **NETWORK | {"proxy": "http://user:pw@proxy.corp:3128"})

    secret = recorder.one("kubernetes:core/v1:Secret", "ci-proxy").inputs
    assert rpc.is_rpc_secret(secret["stringData"])  # the URL may hold credentials
    proxy_vars = rpc.unwrap_rpc_secret(secret["stringData"])
    assert (
        proxy_vars["HTTPS_PROXY"] == proxy_vars["https_proxy"] == "http://user:pw@proxy.corp:3128"
    )
    no_proxy = f"{BASE_NO_PROXY},.svc,.cluster.local,ghes.corp,.internal"
    assert proxy_vars["NO_PROXY"] == proxy_vars["no_proxy"] == no_proxy
    ca = recorder.one("kubernetes:core/v1:ConfigMap", "ci-ca").inputs["data"]
    assert ca["ca.pem"] == CA_PEM and ca["bundle.pem"].endswith(CA_PEM)
    assert ca["bundle.pem"].count("BEGIN CERTIFICATE") > 10  # the public roots too

    pod = recorder.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "ci-proxy"}}]
    assert {"name": "github-ca", "configMap": {"name": "ci-ca"}} in pod["volumes"]
    mount = {"name": "github-ca", "mountPath": "/etc/gha-scalesets/ca", "readOnly": True}
    assert mount in container["volumeMounts"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # the listener's Kubernetes client reaches the API server directly, by its service address
    assert env["NO_PROXY"] == env["no_proxy"] == f"$(KUBERNETES_SERVICE_HOST),{no_proxy}"
    settings = settings_from_env(env)
    assert settings.ca_bundle == "/etc/gha-scalesets/ca/ca.pem"
    assert settings.proxy is None  # read from HTTPS_PROXY (envFrom), not repeated in plain env
    assert settings.k8s is not None
    assert (settings.k8s.proxy_secret, settings.k8s.ca_config_map) == ("ci-proxy", "ci-ca")


def test_ecs_listener_and_runner_tasks_carry_proxy_and_ca(
    deploy, recorder, settings_from_env
) -> None:
    deploy("ecs", **NETWORK)

    [listener] = containers(recorder, "ci-listener")
    env = {e["name"]: e["value"] for e in listener["environment"]}
    assert env["HTTPS_PROXY"] == env["http_proxy"] == PROXY
    assert env["NO_PROXY"] == f"{BASE_NO_PROXY},ghes.corp,.internal"  # metadata never proxied
    assert settings_from_env(env).ca_bundle == CA_PEM
    [runner] = containers(recorder, "ci-runner")
    runner_env = {e["name"]: e["value"] for e in runner["environment"]}
    assert runner_env["HTTPS_PROXY"] == PROXY and runner_env["GHA_SCALESETS_CA_PEM"] == CA_PEM
    assert "GHA_SCALESETS_CA_PEM" in runner["command"][0]  # the entrypoint writes and trusts it


def test_ec2_boot_scripts_carry_proxy_and_ca(deploy, recorder, settings_from_env) -> None:
    deploy("ec2", **NETWORK)

    listener = user_data(recorder.one(LT, "ci-listener"))
    env = env_file(listener)
    assert env["HTTPS_PROXY"] == PROXY
    assert settings_from_env(env).ca_bundle == "/etc/gha-scalesets/ca/ca.pem"
    assert f"cat > /etc/gha-scalesets/ca/ca.pem <<'GHA_SCALESETS_CA'\n{CA_PEM}" in listener
    assert "--volume /etc/gha-scalesets/ca/ca.pem:/etc/gha-scalesets/ca/ca.pem:ro" in listener
    runner = base64.b64decode(recorder.one(LT, "ci-runner").inputs["userData"]).decode()
    assert f"export HTTPS_PROXY={PROXY}\n" in runner
    assert "GHA_SCALESETS_CA_PEM=$(cat <<'GHA_SCALESETS_CA'" in runner and CA_PEM in runner


@pytest.mark.parametrize("runtime", ["ec2", "ecs"])
def test_aws_refuses_a_proxy_with_credentials(deploy, runtime: str) -> None:
    with pytest.raises(ListenerConfigError, match="credentials would sit in plain") as caught:
        deploy(runtime, proxy="http://user:secretpw@proxy.corp:3128")
    assert "secretpw" not in str(caught.value)


def test_no_network_settings_add_nothing(deploy, recorder) -> None:
    deploy("ecs")
    [runner] = containers(recorder, "ci-runner")
    assert runner["environment"] == []
    assert json.dumps(containers(recorder, "ci-listener")).count("PROXY") == 0
