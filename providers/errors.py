"""The error the provider raises: what the person running ``pulumi`` reads."""


class ScaleSetProviderError(Exception):
    """A failed operation, phrased for the person running ``pulumi up`` (never holds secrets).

    The engine shows the message (after the provider host's traceback), so it names the scale
    set and the config URL and says what to do next.
    """
