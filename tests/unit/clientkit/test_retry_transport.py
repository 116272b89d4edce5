"""Retry policy, Retry-After parsing and the shared send loop (limiter slots, error mapping, size cap)."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

import httpx
import pytest
from fakeclock import FakeClock

from _clientkit._failures import ResponseTooLargeFailure, TransportFailure
from _clientkit._limiter import Ticket
from _clientkit._retry import RetryPolicy, parse_retry_after
from _clientkit._transport import ResponseParts, Retry, map_httpx_errors, send

LOG = logging.getLogger("_clientkit.tests")
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "Wed, 25 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 25 Nov 2026 11:00:00 GMT"}, 0.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers, expected):
    """Retry-After is read as seconds, an HTTP date, or retry-after-ms; garbage is ignored."""
    assert parse_retry_after(headers, now=NOW) == expected


def test_full_jitter_stays_under_the_capped_ceiling():
    """Each delay lies in [0, min(cap, base * 2**attempt)]."""
    policy = RetryPolicy(base=0.5, cap=30.0)
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(30.0, 0.5 * 2**attempt)
        delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8


@pytest.mark.parametrize(
    ("field", "value"), [("max_retries", -1), ("base", -0.1), ("cap", float("inf"))]
)
def test_policy_validation_names_the_field(field, value):
    """An invalid policy value raises a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.PoolTimeout("busy"), False),
        (httpx.ReadError("reset"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.WriteError("broken"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
)
def test_httpx_errors_map_to_request_sent(exc, sent):
    """Only failures before the request left count as request_sent=False."""
    with pytest.raises(TransportFailure) as info, map_httpx_errors():
        raise exc
    assert info.value.request_sent is sent
    assert info.value.__cause__ is exc


class RecordingLimiter:
    """A limiter that admits at once and records releases."""

    def __init__(self) -> None:
        self.released: list[bool] = []
        self.paused: list[float] = []
        self._n = 0

    async def acquire(self) -> Ticket:
        self._n += 1
        return Ticket(self._n)

    async def release(self, ticket: Ticket, *, abandoned: bool = False) -> None:
        self.released.append(abandoned)

    async def pause(self, seconds: float) -> None:
        self.paused.append(seconds)


def _never_retry(_: ResponseParts) -> Retry | None:
    return None


async def _send(handler, *, safe=True, limiter=None, max_bytes=1024, classify=_never_retry):
    clock = FakeClock()
    outcome: list[object] = []
    async with (
        clock.autoadvance(),
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client,
    ):
        try:
            outcome.append(
                await send(
                    client,
                    lambda: httpx.Request("POST", "https://api.test/"),
                    safe=safe,
                    policy=RetryPolicy(max_retries=2),
                    classify=classify,
                    limiter=limiter,
                    clock=clock,
                    max_response_bytes=max_bytes,
                    log=LOG,
                    action="Test",
                )
            )
        except Exception as exc:
            outcome.append(exc)
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


async def test_oversized_response_is_refused():
    """A body over the cap raises ResponseTooLargeFailure instead of filling memory."""
    with pytest.raises(ResponseTooLargeFailure):
        await _send(lambda _: httpx.Response(200, content=b"x" * 4096))


async def test_slot_released_as_abandoned_after_a_read_failure():
    """A failure after sending keeps the slot live (abandoned); a clean response releases it normally."""
    limiter = RecordingLimiter()
    calls = iter([httpx.ReadError("reset"), None])

    def handler(_: httpx.Request) -> httpx.Response:
        exc = next(calls)
        if exc is not None:
            raise exc
        return httpx.Response(200, content=b"{}")

    await _send(handler, limiter=limiter)
    assert limiter.released == [True, False]


async def test_refusal_pauses_limiter_and_retries_non_idempotent_calls():
    """A refusal pauses the limiter for Retry-After and retries even a non-idempotent call."""
    limiter = RecordingLimiter()
    responses = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200)])

    def classify(parts: ResponseParts) -> Retry | None:
        return (
            Retry(after=parse_retry_after(parts.headers), refusal=True)
            if parts.status_code == 429
            else None
        )

    parts = await _send(lambda _: next(responses), safe=False, limiter=limiter, classify=classify)
    assert parts.status_code == 200
    assert limiter.paused == [3.0]
