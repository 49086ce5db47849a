"""Declarative GitHub Actions runner scale sets on Pulumi, and the listener that serves them.

The public API is one import::

    from gha_scalesets import ScaleSet, ScaleSetArgs, ScaleSetListener, ScaleSetListenerArgs

Names load on first use, so an install without the Pulumi SDK (``gha-scalesets[listener]``)
can still import the listener, and an EC2/ECS user never loads the Kubernetes SDK. The
subpackages are ``gha_scalesets.scaleset`` (client), ``.providers`` (the ``ScaleSet`` dynamic
provider), ``.components`` (the ``ScaleSetListener`` component), ``.listener`` (the daemon)
and ``.simulator`` (the local scale-set service).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gha_scalesets.extras import needs_extra

__version__ = "0.1.0"

_PROVIDERS = (
    "GitHubAppArgs",
    "ScaleSet",
    "ScaleSetArgs",
    "ScaleSetInputError",
    "ScaleSetProviderError",
)
_COMPONENTS = (
    "AlarmThresholds",
    "Ec2Options",
    "EcsOptions",
    "K8sOptions",
    "ListenerConfigError",
    "ListenerScaleSet",
    "PacingOptions",
    "ScaleSetListener",
    "ScaleSetListenerArgs",
)
_EXPORTS = {name: "gha_scalesets.providers" for name in _PROVIDERS} | {
    name: "gha_scalesets.components" for name in _COMPONENTS
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads each name
    from gha_scalesets.components import AlarmThresholds as AlarmThresholds
    from gha_scalesets.components import Ec2Options as Ec2Options
    from gha_scalesets.components import EcsOptions as EcsOptions
    from gha_scalesets.components import K8sOptions as K8sOptions
    from gha_scalesets.components import ListenerConfigError as ListenerConfigError
    from gha_scalesets.components import ListenerScaleSet as ListenerScaleSet
    from gha_scalesets.components import PacingOptions as PacingOptions
    from gha_scalesets.components import ScaleSetListener as ScaleSetListener
    from gha_scalesets.components import ScaleSetListenerArgs as ScaleSetListenerArgs
    from gha_scalesets.providers import GitHubAppArgs as GitHubAppArgs
    from gha_scalesets.providers import ScaleSet as ScaleSet
    from gha_scalesets.providers import ScaleSetArgs as ScaleSetArgs
    from gha_scalesets.providers import ScaleSetInputError as ScaleSetInputError
    from gha_scalesets.providers import ScaleSetProviderError as ScaleSetProviderError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gha_scalesets' has no attribute {name!r}")
    with needs_extra("pulumi", f"gha_scalesets.{name}"):  # [aws] and [k8s] include it
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
