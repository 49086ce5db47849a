"""Message sessions, the long poll, acks, job acquisition and message-queue token refresh."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gha_scalesets.scaleset import (
    Client,
    JobAssigned,
    JobAvailable,
    MessageQueueTokenExpiredError,
    ProtocolError,
    ScaleSet,
    ScaleSetNotFoundError,
    SessionConflictError,
    SessionNotFoundError,
)
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support.github import (
    GET_MESSAGE,
    REFRESH_SESSION,
    ClientFactory,
    requests,
    token_expired,
)
from tests.support.waits import wait_for


async def test_session_lifecycle_and_messages(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    session = await client.create_message_session(scale_set.id, owner="host-1")
    assert session.owner_name == "host-1"
    assert session.statistics is not None and session.scale_set_id == scale_set.id
    assert session.message_queue_url.startswith(sim.url)
    assert "host-1" in repr(session)
    assert session.message_queue_access_token.get_secret_value() not in repr(session)

    job_ids = sim.queue_jobs([scale_set.name], count=3)
    message = await client.get_message(session, last_message_id=0, max_capacity=10)
    assert message is not None and message.statistics is not None
    assert message.statistics.total_assigned_jobs == 3
    assert all(isinstance(job, JobAssigned) for job in message.jobs)
    assert sorted(job.runner_request_id for job in message.jobs) == sorted(job_ids)
    assert message.jobs[0].repository_name == "app" and message.jobs[0].owner_name == "acme"

    # Not acknowledged: redelivered.
    again = await client.get_message(session, last_message_id=0, max_capacity=10)
    assert again is not None and again.message_id == message.message_id
    await client.delete_message(session, message.message_id)
    # Nothing new within the simulator's 0.5 s hold: 202 -> None.
    assert await client.get_message(session, message.message_id, max_capacity=10) is None

    await client.delete_message_session(session)
    second = await client.create_message_session(scale_set.id, owner="host-2")
    assert second.session_id != session.session_id
    with pytest.raises(SessionNotFoundError):
        await client.refresh_message_session(session)
    with pytest.raises(SessionNotFoundError) as info:
        await client.delete_message_session(session)
    assert "SessionExpiredException" in info.value.type_name


async def test_second_session_conflicts(client: Client, scale_set: ScaleSet) -> None:
    await client.create_message_session(scale_set.id, owner="host-1")
    with pytest.raises(SessionConflictError, match="already has an active session") as info:
        await client.create_message_session(scale_set.id, owner="host-2")
    assert info.value.status == 409
    assert "Another listener owns the scale set" in str(info.value)


async def test_session_on_missing_scale_set(client: Client) -> None:
    with pytest.raises(ScaleSetNotFoundError):
        await client.create_message_session(4040, owner="host-1")


async def test_refresh_rotates_the_token_in_place(client: Client, scale_set: ScaleSet) -> None:
    session = await client.create_message_session(scale_set.id, owner="host-1")
    old_token = session.message_queue_access_token.get_secret_value()
    returned = await client.refresh_message_session(session)
    assert returned is session
    assert session.message_queue_access_token.get_secret_value() != old_token
    assert await client.get_message(session, max_capacity=1) is None


async def test_expired_queue_token_is_refreshed_once_transparently(
    sim_factory: Callable[..., SimulatorServer], make_client: ClientFactory
) -> None:
    # Issued with exp = int(now + ttl): a 2 s TTL leaves each token at least 1 s of life.
    server = sim_factory(mq_token_ttl_seconds=2)
    client = make_client(server=server)
    scale_set = await client.create_scale_set(name="ttl", runner_group_id=1)
    session = await client.create_message_session(scale_set.id, owner="host-1")
    old_token = session.message_queue_access_token.get_secret_value()
    server.queue_jobs(["ttl"], count=1)
    await wait_for(lambda: token_expired(old_token))

    message = await client.get_message(session, max_capacity=5)
    assert message is not None and len(message.jobs) == 1
    assert session.message_queue_access_token.get_secret_value() != old_token
    assert requests(server, REFRESH_SESSION) == 1
    assert requests(server, GET_MESSAGE) == 2


async def test_injected_queue_401_on_delete_is_refreshed(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    session = await client.create_message_session(scale_set.id, owner="host-1")
    sim.queue_jobs([scale_set.name], count=1)
    message = await client.get_message(session, max_capacity=5)
    assert message is not None
    sim.set_faults(mq_unauthorized_once=True)
    await client.delete_message(session, message.message_id)
    assert requests(sim, REFRESH_SESSION) == 1
    assert await client.get_message(session, message.message_id, max_capacity=5) is None


async def test_queue_401_after_a_refresh_is_a_typed_error(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    def reinject_after_refresh(method: str, route: str, status: int | None, _: float) -> None:
        if method == "PATCH" and route.endswith("{sessionId}") and status == 200:
            sim.set_faults(mq_unauthorized_once=True)

    client = make_client(observer=reinject_after_refresh)
    scale_set = await client.create_scale_set(name="unauth", runner_group_id=1)
    session = await client.create_message_session(scale_set.id, owner="host-1")
    sim.set_faults(mq_unauthorized_once=True)
    with pytest.raises(MessageQueueTokenExpiredError) as info:
        await client.get_message(session, max_capacity=1)
    assert info.value.status == 401
    assert requests(sim, REFRESH_SESSION) == 1  # refreshed once, not in a loop


async def test_queue_401_for_a_vanished_session_is_session_not_found(
    make_client: ClientFactory,
) -> None:
    owner, intruder = make_client(), make_client()
    scale_set = await owner.create_scale_set(name="vanish", runner_group_id=1)
    session = await owner.create_message_session(scale_set.id, owner="host-1")
    await intruder.delete_message_session(session)
    with pytest.raises(SessionNotFoundError):
        await owner.get_message(session, max_capacity=1)


async def test_ghes_jobs_are_acquired(
    sim_factory: Callable[..., SimulatorServer], make_client: ClientFactory
) -> None:
    server = sim_factory(ghes_acquire=True)
    client = make_client(server=server)
    scale_set = await client.create_scale_set(name="ghes", runner_group_id=1)
    session = await client.create_message_session(scale_set.id, owner="host-1")
    job_ids = server.queue_jobs(["ghes"], count=2)

    message = await client.get_message(session, max_capacity=5)
    assert message is not None
    offered = [job for job in message.jobs if isinstance(job, JobAvailable)]
    assert sorted(job.runner_request_id for job in offered) == sorted(job_ids)
    assert all(job.acquire_job_url for job in offered)

    acquired = await client.acquire_jobs(
        session, scale_set.id, [j.runner_request_id for j in offered]
    )
    assert sorted(acquired) == sorted(job_ids)
    assert await client.acquire_jobs(session, scale_set.id, job_ids) == []  # already taken
    assert await client.acquire_jobs(session, scale_set.id, []) == []

    server.set_faults(mq_unauthorized_once=True)
    more = server.queue_jobs(["ghes"], count=1)
    await client.delete_message(session, message.message_id)
    offer = await client.get_message(session, message.message_id, max_capacity=5)
    assert offer is not None
    assert await client.acquire_jobs(session, scale_set.id, more) == more
    assert requests(server, REFRESH_SESSION) == 1


async def test_empty_message_body_is_a_protocol_error(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    session = await client.create_message_session(scale_set.id, owner="host-1")
    sim.set_faults(empty_body_rate=1.0)
    with pytest.raises(ProtocolError, match="empty body"):
        await client.get_message(session, max_capacity=1)


async def test_session_without_queue_url_is_rejected_and_released(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    sim.set_faults(empty_queue_url_once=True)
    with pytest.raises(ProtocolError, match="without a message queue URL"):
        await client.create_message_session(scale_set.id, owner="host-1")
    # The broken session was deleted, so the retry does not hit a 409.
    session = await client.create_message_session(scale_set.id, owner="host-1")
    assert session.message_queue_url
