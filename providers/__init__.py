"""Pulumi dynamic providers that manage GitHub Actions runner scale sets as resources."""

if __name__ != "gha_scalesets.providers":  # one module, one name: never a top-level "providers"
    raise ImportError(f"{__name__!r} is gha_scalesets.providers: import it by that name")

from gha_scalesets.providers.errors import ScaleSetInputError, ScaleSetProviderError
from gha_scalesets.providers.scale_set import GitHubAppArgs, ScaleSet, ScaleSetArgs
from gha_scalesets.providers.scale_set_provider import ScaleSetProvider

__all__ = [
    "GitHubAppArgs",
    "ScaleSet",
    "ScaleSetArgs",
    "ScaleSetInputError",
    "ScaleSetProvider",
    "ScaleSetProviderError",
]
