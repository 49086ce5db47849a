"""Parsing the EventBridge events the AWS runtimes read from their queue: a malformed one is
skipped, never raised from the runtime's event stream."""

from __future__ import annotations

from typing import Any

import pytest

from gha_scalesets.contract.names import EC2_STATE_CHANGE
from gha_scalesets.listener.runtimes.aws_events import parse_ec2_event
from gha_scalesets.listener.runtimes.base import RunnerPhase


def _state_change(state: Any) -> dict[str, Any]:
    return {"detail-type": EC2_STATE_CHANGE, "detail": {"instance-id": "i-1", "state": state}}


def test_an_instance_state_change_is_a_runner_phase() -> None:
    event = parse_ec2_event(_state_change("running"))
    assert event is not None
    assert (event.provider_id, event.phase) == ("i-1", RunnerPhase.RUNNING)


@pytest.mark.parametrize("state", [["running"], {"name": "running"}, None, 16, "rebooting"])
def test_a_state_that_is_no_known_name_is_skipped(state: Any) -> None:
    assert parse_ec2_event(_state_change(state)) is None
