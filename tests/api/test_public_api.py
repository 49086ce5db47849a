"""The public API is ``from gha_scalesets import ...``: every name resolves, lazily, to the class
its subpackage defines, and nothing heavier loads than what the name needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gha_scalesets
from gha_scalesets import components, providers


def test_every_public_name_is_the_subpackages_own_object() -> None:
    names = set(gha_scalesets.__all__) - {"__version__"}
    assert names == set(components.__all__) | (set(providers.__all__) - {"ScaleSetProvider"})
    for name in names:
        source = components if name in components.__all__ else providers
        assert getattr(gha_scalesets, name) is getattr(source, name), name
    assert set(dir(gha_scalesets)) >= names


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Listener'"):
        _ = gha_scalesets.Listener  # type: ignore[attr-defined]


def test_importing_the_package_loads_no_sdk_until_a_name_is_used() -> None:
    probe = (
        "import sys, gha_scalesets; before = {'pulumi', 'pulumi_aws', 'pulumi_kubernetes'} & "
        "set(sys.modules); gha_scalesets.ScaleSetListener; "
        "after = {'pulumi_aws', 'pulumi_kubernetes'} & set(sys.modules); print(before, after)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["set()", "set()"]
