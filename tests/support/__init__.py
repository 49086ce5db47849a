"""Test support shared by the test suite and the benchmarks: builders, waits, ports, processes,
moto and its AWS network, the simulator and listener helpers, in-process runtimes and contracts.

Nothing here is a pytest fixture: fixtures live in ``conftest.py`` and ``tests/fixtures/`` and
build on these modules; ``benchmarks/`` imports them too (never the other way round).
"""
