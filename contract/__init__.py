"""The contract between the ScaleSetListener component and the listener it deploys.

What both sides must agree on lives here and only here, free of any cloud SDK, so that the
component (``pulumi preview``) and the listener import the same definitions:

- :mod:`~gha_scalesets.contract.names`: resource tags, Kubernetes labels, the runner table's
  keys, the state-event types, environment variables, parameter paths, CloudWatch names;
- :mod:`~gha_scalesets.contract.network`: the proxy variables and private-CA files runners get;
- :mod:`~gha_scalesets.contract.boot`: the runner bootstrap (EC2 user data) and the ECS runner
  entrypoint, which read the JIT config the listener stores.
"""

if __name__ != "gha_scalesets.contract":  # one module, one name: never a top-level "contract"
    raise ImportError(f"{__name__!r} is gha_scalesets.contract: import it by that name")
