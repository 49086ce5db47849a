"""Pulumi dynamic providers that manage GitHub Actions runner scale sets as resources."""

from providers.errors import ScaleSetProviderError
from providers.scale_set import GitHubAppArgs, ScaleSet, ScaleSetArgs
from providers.scale_set_provider import ScaleSetProvider

__all__ = ["GitHubAppArgs", "ScaleSet", "ScaleSetArgs", "ScaleSetProvider", "ScaleSetProviderError"]
