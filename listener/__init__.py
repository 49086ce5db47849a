"""The scale-set listener: long-polls GitHub and keeps ephemeral runners at the job count."""

if __name__ != "gha_scalesets.listener":  # one module, one name: never a top-level "listener"
    raise ImportError(f"{__name__!r} is gha_scalesets.listener: import it by that name")
