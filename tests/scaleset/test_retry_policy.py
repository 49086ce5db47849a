"""Retry policy arithmetic: full-jitter bounds and server-requested waits."""

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from gha_scalesets.scaleset import RetryPolicy
from gha_scalesets.scaleset.retry import server_requested_delay

NOW = 1_800_000_000.0
HTTP_DATE = format_datetime(datetime.fromtimestamp(NOW + 12, UTC), usegmt=True)


def test_full_jitter_stays_within_the_exponential_ceiling() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=30.0, seed=7)
    for attempt in range(1, 9):
        ceiling = min(30.0, 2 ** (attempt - 1))
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # jitter spreads over the whole range


def test_seeded_policies_are_reproducible() -> None:
    a, b = RetryPolicy(seed=3), RetryPolicy(seed=3)
    assert [a.backoff(3) for _ in range(5)] == [b.backoff(3) for _ in range(5)]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": HTTP_DATE}, 12.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 30))}, 30.0),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": str(int(NOW + 30))}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_server_requested_delay(headers: dict[str, str], expected: float | None) -> None:
    response = httpx.Response(429, headers=headers)
    assert server_requested_delay(response, NOW) == expected


@pytest.mark.parametrize(
    ("status", "headers", "retryable"),
    [
        (500, {}, True),
        (502, {}, True),
        (503, {}, True),
        (501, {}, False),
        (429, {}, True),
        (404, {}, False),
        (409, {}, False),
        (401, {}, False),
        (403, {}, False),
        (403, {"X-RateLimit-Remaining": "0"}, True),
        (403, {"Retry-After": "60"}, True),
    ],
)
def test_retryable_statuses(status: int, headers: dict[str, str], retryable: bool) -> None:
    assert RetryPolicy().retryable_status(httpx.Response(status, headers=headers)) is retryable
