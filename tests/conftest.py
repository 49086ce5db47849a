"""Shared fixtures: each real local service lives in its own module under tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.k8s",
    "tests.fixtures.pulumi",
    "tests.fixtures.sim",
    "tests.fixtures.network",
    "tests.fixtures.packaging",
    "tests.fixtures.toolchain",
    "tests.fixtures.secret_scan",  # after the fixture modules it imports
    "tests.fixtures.control_plane",  # imports secret_scan; starts nothing until asked
]
