"""Pacing: a token bucket (aiolimiter) in front of the window log shapes a backlog; the log keeps the limit.

aiolimiter reads the event loop's clock, so these tests run on `fakeclock.VirtualTimeLoop` (virtual loop
time, jumping to the next timer when idle) and give the window log a `LoopClock`: both halves of the
limiter then read the same virtual time.
"""

from __future__ import annotations

import bisect
import random

import anyio
import pytest
from fakeclock import LoopClock, run_virtual
from hypothesis import given, settings
from hypothesis import strategies as st

from _clientkit._limiter import DEFAULT_BURST, Pacing, SlidingWindowLimiter, slot

BACKLOG = 1000


def _worst(times: list[float], width: float) -> int:
    """The most events in any half-open window [t, t + width), on microsecond-rounded times.

    aiolimiter's drip lands a few ulps early (0.3 * 200 = 59.99999999999998); a server stamps arrivals
    at finite resolution.
    """
    ordered = sorted(round(t * 1e6) for t in times)
    span = round(width * 1e6)
    return max(bisect.bisect_left(ordered, t + span) - i for i, t in enumerate(ordered))


def _backlog(
    max_requests: int, period: float, pacing: Pacing | None, latencies: list[float]
) -> tuple[list[float], list[float]]:
    """Run `BACKLOG` requests queued at once; return (admission times, release times)."""

    async def main() -> tuple[list[float], list[float]]:
        clock = LoopClock()
        limiter = SlidingWindowLimiter(max_requests, period, clock=clock, pacing=pacing)
        admitted: list[float] = []
        released: list[float] = []

        async def request(latency: float) -> None:
            async with slot(limiter):
                admitted.append(clock.monotonic())
                await anyio.sleep(latency)
            released.append(clock.monotonic())

        async with anyio.create_task_group() as tg:
            for latency in latencies:
                tg.start_soon(request, latency)
        return admitted, released

    return run_virtual(main)


@settings(max_examples=15, deadline=None)
@given(
    max_requests=st.sampled_from([10, 50, 200]),
    period=st.sampled_from([1.0, 3.0, 60.0]),
    burst=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    max_latency=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_a_paced_backlog_never_exceeds_burst_plus_rate_per_second_nor_the_window(
    max_requests, period, burst, seed, max_latency
):
    """With a backlog of 1,000, no one-second window holds more than the bucket's burst + rate admissions, and no `period` window more than `max_requests` server arrivals."""
    rng = random.Random(seed)
    latencies = [rng.uniform(0.0, max_latency) for _ in range(BACKLOG)]
    pacing = Pacing.even(max_requests, period, burst=burst)
    admitted, released = _backlog(max_requests, period, pacing, latencies)
    assert len(admitted) == BACKLOG
    per_second = _worst(admitted, 1.0)
    assert per_second <= pacing.burst + pacing.rate, (
        f"{per_second} admissions in one second; bucket: burst {pacing.burst}, rate {pacing.rate}/s"
    )
    # The server sees each request somewhere between admission and release: both ends, worst case.
    assert _worst(admitted, period) <= max_requests
    assert _worst(released, period) <= max_requests


def test_the_default_pacing_spreads_200_per_minute_evenly_with_a_burst_of_a_quarter():
    """`Pacing.even(200, 60)`: 50 at once out of an idle limiter (a batch's tail of deletes goes at
    once), then one every 0.3 s; 200 per minute."""
    pacing = Pacing.even(200, 60.0)
    assert (pacing.rate, pacing.burst) == (200 / 60.0, 50)
    admitted, _ = _backlog(200, 60.0, pacing, [0.0] * BACKLOG)
    assert sorted(admitted)[:51] == pytest.approx([0.0] * 50 + [0.3])
    assert _worst(admitted, 1.0) == 53  # 50 + 3.33
    assert _worst(admitted, 60.0) == 200
    # It still sustains the limit: 1,000 requests take five minutes, minus the burst's head start.
    assert max(admitted) == pytest.approx((BACKLOG - 50) * 0.3, abs=0.31)


def test_small_limits_keep_the_minimum_burst():
    """A quarter of a small window is less than `DEFAULT_BURST`: the minimum holds (capped by the limit)."""
    assert Pacing.even(20, 60.0).burst == DEFAULT_BURST
    assert Pacing.even(4, 60.0).burst == 4
    assert Pacing.even(200, 60.0, burst=7).burst == 7


def test_without_pacing_a_backlog_goes_out_in_bursts_of_the_whole_limit():
    """The window log alone sends `max_requests` at once at every window edge: what pacing is for."""
    admitted, _ = _backlog(200, 60.0, None, [0.0] * BACKLOG)
    assert _worst(admitted, 1.0) == 200


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": 0.0, "burst": 1}, "rate"),
        ({"rate": float("inf"), "burst": 1}, "rate"),
        ({"rate": float("nan"), "burst": 1}, "rate"),
        ({"rate": 1.0, "burst": 0}, "burst"),
        ({"rate": 1.0, "burst": 2.5}, "burst"),
        ({"rate": 1.0, "burst": True}, "burst"),
    ],
)
def test_invalid_pacing_raises_value_error_naming_the_field(kwargs, field):
    """A bad rate or burst raises ValueError whose message starts with the field name."""
    with pytest.raises(ValueError, match=f"^{field} must be"):
        Pacing(**kwargs)


def test_pacing_must_be_a_pacing_value():
    """Passing something else as `pacing` is refused before any request."""
    with pytest.raises(ValueError, match=r"^pacing must be"):
        SlidingWindowLimiter(1, 1.0, pacing=(1.0, 1))  # type: ignore[arg-type]


async def test_the_recuro_clients_default_limiter_paces_on_the_real_clock_only():
    """`RecuroClient()` paces its default limiter (200 per 60 s, bursts of 50, a quarter of the window); with an injected clock, which aiolimiter cannot follow, it does not."""
    from fakeclock import FakeClock

    from recuro_async import RateLimit, RecuroClient

    async with RecuroClient("key", "secret", rate_limit=RateLimit(200, 60.0)) as client:
        assert isinstance(client.limiter, SlidingWindowLimiter)
        assert client.limiter.pacing == Pacing.even(200, 60.0) == Pacing(200 / 60.0, 50)
    async with RecuroClient("key", "secret", clock=FakeClock()) as client:
        assert isinstance(client.limiter, SlidingWindowLimiter)
        assert client.limiter.pacing is None
