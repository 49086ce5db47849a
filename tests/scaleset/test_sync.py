"""The synchronous facade: threads, a caller's running loop, clean close, dill/pickle."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dill
import pytest

from gha_scalesets.scaleset import PatCredentials, ScaleSetError, SyncClient
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import RUNNER_REGISTRATION, requests


def _sync_client(sim: SimulatorServer) -> SyncClient:
    return SyncClient(sim.config_url("acme"), PatCredentials(SIM_PAT), token_cache=TokenCache())


def _facade_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "scaleset-sync"]


def test_sync_client_from_many_threads(sim: SimulatorServer) -> None:
    before = len(_facade_threads())
    with _sync_client(sim) as client:
        created = client.create_scale_set(name="sync", runner_group_id=1, labels=["sync"])
        with ThreadPoolExecutor(max_workers=8) as pool:
            fetched = list(pool.map(lambda _: client.get_scale_set(created.id), range(16)))
        assert all(f == created for f in fetched)
        results = client.generate_jit_configs(created.id, ["s-1", "s-2"], concurrency=2)
        assert [r.name for r in results] == ["s-1", "s-2"] and all(r.ok for r in results)
        assert client.get_runner_by_name("s-1") == results[0].runner
        assert client.auth_chain_runs == 1
        assert len(_facade_threads()) == before + 1
    assert len(_facade_threads()) == before
    assert requests(sim, RUNNER_REGISTRATION) == 1
    with pytest.raises(ScaleSetError, match="closed"):
        client.get_scale_set(created.id)


async def test_sync_client_inside_a_running_event_loop(sim: SimulatorServer) -> None:
    client = _sync_client(sim)
    try:
        assert client.get_runner_group_by_name("Default").id == 1
    finally:
        client.close()
    client.close()  # idempotent


def test_sync_client_mirrors_the_async_api() -> None:
    assert SyncClient.get_message.__doc__ and "Long-poll" in SyncClient.get_message.__doc__
    for name in ("create_message_session", "acquire_jobs", "remove_runner", "update_scale_set"):
        assert callable(getattr(SyncClient, name))


def test_sync_client_refuses_pickling_with_guidance(sim: SimulatorServer) -> None:
    client = _sync_client(sim)
    with pytest.raises(TypeError, match="create it inside the provider"):
        pickle.dumps(client)
    with pytest.raises(TypeError, match="'http' is not supported"):
        SyncClient(sim.config_url("acme"), PatCredentials(SIM_PAT), http=object())
    assert SIM_PAT not in repr(client)


class _Provider:
    """Shaped like a Pulumi dynamic provider: it only references the scaleset module."""

    def read(self, url: str, token: str, scale_set_id: int) -> dict[str, Any]:
        with SyncClient(url, PatCredentials(token), token_cache=TokenCache()) as client:
            return client.get_scale_set(scale_set_id).to_wire()


def test_objects_referencing_the_module_survive_dill(sim: SimulatorServer) -> None:
    # Pulumi pickles providers defined in __main__ by value, with their globals.
    _Provider.__module__ = _Provider.read.__module__ = "__main__"
    try:
        payload = dill.dumps(_Provider(), recurse=True)
    finally:
        _Provider.__module__ = _Provider.read.__module__ = __name__
    assert b"get_scale_set" in payload  # the class travelled by value, code and all
    provider = dill.loads(payload)  # noqa: S301 - our own payload, made just above
    with _sync_client(sim) as client:
        created = client.create_scale_set(name="dill", runner_group_id=1)
    assert provider.read(sim.config_url("acme"), SIM_PAT, created.id)["name"] == "dill"
