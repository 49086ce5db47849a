"""Runtimes: where runners run. Cloud runtimes are imported only when configured."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.listener.runtimes.base import Runtime


def default_state_dir(config_url: str) -> Path:
    """Per config URL, so listeners of different orgs on one machine never adopt each other."""
    digest = hashlib.sha256(config_url.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"gha-listener-{digest}"


def build_runtime(settings: ListenerSettings) -> Runtime:
    """The runtime named by ``settings.runtime``, configured from its section."""
    if settings.runtime == "ec2":
        from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime

        assert settings.ec2 is not None  # ListenerSettings requires the runtime's section
        return Ec2Runtime(settings.ec2, settings.aws)
    if settings.runtime == "ecs":
        from gha_scalesets.listener.runtimes.ecs import EcsRuntime

        assert settings.ecs is not None
        return EcsRuntime(settings.ecs, settings.aws)
    if settings.runtime == "k8s":
        from gha_scalesets.listener.runtimes.k8s import K8sRuntime

        assert settings.k8s is not None
        return K8sRuntime(settings.k8s)
    from gha_scalesets.listener.runtimes.local import LocalRuntime

    local = settings.local
    return LocalRuntime(
        local,
        local.state_dir or default_state_dir(settings.github_config_url),
        proxy=settings.proxy.get_secret_value() if settings.proxy else None,
        no_proxy=settings.no_proxy,
        ca_bundle=settings.ca_bundle,
    )
