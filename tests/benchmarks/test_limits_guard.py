"""CI guard of the rate-limit scenario: nothing is refused after the first signal.

Runs the reduced ``limits`` scenario (100 jobs, 40 JIT configs a minute per credential, a
minute lasting a second) and checks counts only: the refusals the simulator answered and those
our client received for requests it sent after it had already been refused once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from benchmarks import limits
from benchmarks.__main__ import QUICK

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return asyncio.run(limits.run(**QUICK["limits"]))


def _done(mode: dict[str, Any], jobs: int) -> None:
    assert mode["finished"] and mode["runners_launched"] == jobs


def test_zero_refused_after_the_first_signal(result: dict[str, Any]) -> None:
    jobs = result["parameters"]["jobs"]
    on, learned, off = (result["modes"][m] for m in ("pacing_on", "pacing_learned", "pacing_off"))
    # The ceiling known: GitHub never has to say no.
    _done(on, jobs)
    assert (on["refused"], on["blocked_simulated_minutes"]) == (0, 0)
    # The ceiling unknown: the requests in flight when the first refusal came back are refused
    # too, then the learned ceiling holds: none sent after it is refused.
    _done(learned, jobs)
    assert learned["refused"] >= 1
    assert learned["refused_after_first_signal"] == 0
    # Without pacing the same burst keeps knocking (so the limits above really bite).
    assert off["refused_after_first_signal"] > 0


def test_a_second_credential_takes_half_and_nothing_is_refused(
    result: dict[str, Any],
) -> None:
    jobs = result["parameters"]["jobs"]
    two = result["credentials"]["2"]
    _done(two, jobs)
    assert two["refused"] == two["refused_after_first_signal"] == 0
    assert min(two["jit_requests_per_credential"]) >= 0.4 * jobs
