"""Pulumi dynamic providers that manage GitHub Actions runner scale sets as resources."""

from providers.scale_set import GitHubAppArgs, ScaleSet, ScaleSetArgs
from providers.scale_set_provider import ScaleSetProvider, ScaleSetProviderError

__all__ = ["GitHubAppArgs", "ScaleSet", "ScaleSetArgs", "ScaleSetProvider", "ScaleSetProviderError"]
