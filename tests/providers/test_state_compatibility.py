"""What Pulumi state holds of the provider, pinned: a rename fails here, not in users' stacks.

Every ScaleSet's state carries the provider pickled (dill) by reference to its module and class;
``refresh``, ``update`` and ``destroy`` load it from there with whatever version is installed.
docs/operations.md ("State compatibility") states the promise these tests keep.
"""

from __future__ import annotations

import subprocess
import sys

from pulumi.dynamic.dynamic import serialize_provider

from gha_scalesets.providers.scale_set_provider import ScaleSetProvider
from tests.fixtures.pulumi import pickled_globals
from tests.support.provider_host import PROVIDER_REFERENCE

# ``__provider`` as each release wrote it into state (append one per release that changes it).
WRITTEN_BY_RELEASE = {
    "0.1.0": (
        "gASVRgAAAAAAAACMKmdoYV9zY2FsZXNldHMucHJvdmlkZXJzLnNjYWxlX3NldF9wcm92aWRlcpSM"
        "EFNjYWxlU2V0UHJvdmlkZXKUk5QpgZQu"
    ),
}
_LOAD = """
import base64, sys, dill
provider = dill.loads(base64.b64decode(sys.argv[1]))
print(type(provider).__module__, type(provider).__qualname__, vars(provider))
"""


def test_the_provider_is_stored_by_reference_to_its_module_in_the_namespace() -> None:
    assert pickled_globals(serialize_provider(ScaleSetProvider())) == {PROVIDER_REFERENCE}


def test_what_every_release_wrote_into_state_loads_in_a_fresh_process() -> None:
    """As the engine's provider host loads it: a new interpreter, the installed package."""
    for release, stored in WRITTEN_BY_RELEASE.items():
        loaded = subprocess.run(
            [sys.executable, "-c", _LOAD, stored], capture_output=True, text=True, check=False
        )
        assert loaded.returncode == 0, (release, loaded.stderr)
        assert loaded.stdout.split() == [*PROVIDER_REFERENCE, "{}"], release
