"""The errors of ScaleSet resources: what the person running ``pulumi`` reads."""

import pulumi


class ScaleSetProviderError(Exception):
    """A failed operation, phrased for the person running ``pulumi up`` (never holds secrets).

    The engine shows the message (after the provider host's traceback), so it names the scale
    set and the config URL and says what to do next.
    """


class ScaleSetInputError(pulumi.RunError):
    """A ``ScaleSet`` declared with invalid inputs; Pulumi prints it without a traceback."""
