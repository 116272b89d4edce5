"""Property tests of `SlidingWindowLimiter` over arbitrary arrival patterns, on a fake clock.

Each example draws a limit, a period, a grace, a stream of requests (arrival gaps, in-flight latencies,
abandoned or not, a cancellation deadline for waiters) and some pauses, runs them through the limiter on a
`FakeClock`, and checks the recorded trace. The server may see a request at any time between its admission
and its release stamp (plus `grace` when abandoned).
"""

from __future__ import annotations

import bisect
import math

import anyio
import anyio.abc
import attrs
from fakeclock import FakeClock
from hypothesis import given
from hypothesis import strategies as st

from _clientkit._limiter import SlidingWindowLimiter


@attrs.frozen
class RequestSpec:
    gap: float  # after the previous request's arrival
    latency: float  # from admission to release
    abandoned: bool
    cancel_after: float | None  # give up waiting this long after arrival (if not yet admitted)
    seen_at: float  # where in [admitted, end] the server sees it, as a fraction


@attrs.frozen
class Scenario:
    max_requests: int
    period: float
    grace: float
    requests: list[RequestSpec]
    pauses: list[tuple[float, float]]  # (at, seconds)


@attrs.define
class Record:
    called_at: float
    spec: RequestSpec
    cancelled: bool = False
    seq: int | None = None
    admitted_at: float | None = None
    released_at: float | None = None
    probe: bool = False  # the one request admitted after a pause, before admission reopens


@attrs.frozen
class Trace:
    scenario: Scenario
    records: list[Record]  # in the order `acquire` was called
    pauses: list[tuple[float, float]]  # (issued at, seconds)
    idle_in_use: int  # live slots once everything finished and period + grace passed (twice)


def _durations(period: float) -> st.SearchStrategy[float]:
    """Zero, round multiples of the period (so events coincide), or anything up to two periods."""
    return st.one_of(
        st.just(0.0),
        st.sampled_from([period / 4, period / 2, period, 2 * period]),
        st.floats(0.0, 2 * period),
    )


def _instants(period: float) -> st.SearchStrategy[float]:
    """When a pause is issued: early, often on a round multiple of the period so pauses overlap."""
    return st.one_of(st.sampled_from([0.0, period / 2, period]), st.floats(0.0, 4 * period))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    period = draw(st.one_of(st.sampled_from([1.0, 2.5, 60.0]), st.floats(0.01, 100.0)))
    grace = draw(st.sampled_from([0.0, 0.0, period / 10, period / 2]))
    fraction = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
    request = st.builds(
        RequestSpec,
        gap=st.one_of(st.just(0.0), _durations(period)),
        latency=_durations(period),
        abandoned=st.booleans(),
        cancel_after=st.none() | _durations(period),
        seen_at=fraction,
    )
    return Scenario(
        max_requests=draw(st.integers(1, 4)),
        period=period,
        grace=grace,
        requests=draw(st.lists(request, min_size=1, max_size=25)),
        pauses=draw(st.lists(st.tuples(_instants(period), _durations(period)), max_size=3)),
    )


async def _run(scenario: Scenario) -> Trace:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(
        scenario.max_requests, scenario.period, clock=clock, grace=scenario.grace
    )
    records: list[Record] = []
    pauses: list[tuple[float, float]] = []

    async def give_up_later(scope: anyio.CancelScope, record: Record) -> None:
        assert record.spec.cancel_after is not None
        await clock.sleep(record.spec.cancel_after)
        if record.admitted_at is None:
            scope.cancel()

    async def request(spec: RequestSpec, tg: anyio.abc.TaskGroup) -> None:
        record = Record(called_at=clock.monotonic(), spec=spec)
        records.append(record)
        scope = anyio.CancelScope()
        if spec.cancel_after is not None:
            tg.start_soon(give_up_later, scope, record)
        with scope:
            ticket = await limiter.acquire()
        if scope.cancelled_caught:
            record.cancelled = True
            return
        record.seq, record.admitted_at = ticket.seq, clock.monotonic()
        record.probe = limiter._probe == ticket.seq
        await clock.sleep(spec.latency)
        record.released_at = clock.monotonic()
        await limiter.release(ticket, abandoned=spec.abandoned)

    async def pauser() -> None:
        for at, seconds in sorted(scenario.pauses):
            await clock.sleep(at - clock.monotonic())
            pauses.append((clock.monotonic(), seconds))
            await limiter.pause(seconds)

    async def watchdog(horizon: float) -> None:
        await clock.sleep(horizon)  # only reached if every task is stuck with no deadline left
        raise AssertionError(f"requests still unfinished at t={horizon}: the limiter is stuck")

    async with clock.autoadvance(), anyio.create_task_group() as outer:
        slowest = scenario.period + scenario.grace
        horizon = sum(s.gap for s in scenario.requests) + slowest * (
            10 + 5 * len(scenario.requests)
        )
        outer.start_soon(watchdog, horizon)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pauser)
            for spec in scenario.requests:
                await clock.sleep(spec.gap)
                tg.start_soon(request, spec, tg)
        await clock.sleep(2 * slowest)  # twice: float rounding
        outer.cancel_scope.cancel()
    return Trace(scenario, records, pauses, limiter.in_use)


def _trace(scenario: Scenario) -> Trace:
    return anyio.run(_run, scenario, backend="asyncio")


def _admitted(trace: Trace) -> list[Record]:
    """Admitted requests in admission order."""
    return sorted((r for r in trace.records if r.seq is not None), key=lambda r: r.seq or 0)


def _end(record: Record, grace: float) -> float:
    """The last moment the server may see this request: its release stamp (+ grace if abandoned)."""
    assert record.released_at is not None
    return record.released_at + grace if record.spec.abandoned else record.released_at


def _server_arrival(record: Record, grace: float) -> float:
    assert record.admitted_at is not None
    end = _end(record, grace)
    return min(end, record.admitted_at + record.spec.seen_at * (end - record.admitted_at))


@given(scenarios())
def test_no_period_window_holds_more_than_max_requests_as_the_server_counts(scenario):
    """Wherever in [admission, release stamp (+grace)] the server sees each request, no half-open window of `period` holds more than `max_requests`."""
    trace = _trace(scenario)
    limit, period, grace = scenario.max_requests, scenario.period, scenario.grace
    admitted = _admitted(trace)

    # The sampled server: count every window [t, t + period) starting at an arrival.
    arrivals = sorted(_server_arrival(r, grace) for r in admitted)
    for i, start in enumerate(arrivals):
        count = bisect.bisect_left(arrivals, start + period) - i
        assert count <= limit, f"{count} arrivals in [{start}, {start} + {period})"

    # The worst-case server: max_requests + 1 requests fit in one window iff the last admitted of them
    # was admitted less than `period` after the earliest end among the others. So at every admission,
    # fewer than max_requests earlier requests may end less than `period` before it.
    for j, last in enumerate(admitted):
        assert last.admitted_at is not None
        overlapping = [r for r in admitted[:j] if last.admitted_at < _end(r, grace) + period]
        assert len(overlapping) < limit, (
            f"request {last.seq} admitted at {last.admitted_at} can share a window with "
            f"{len(overlapping)} earlier ones"
        )


@given(scenarios())
def test_pauses_admit_nothing_until_they_end(scenario):
    """No request is admitted strictly inside a pause (from when it was issued until it ends)."""
    trace = _trace(scenario)
    for record in _admitted(trace):
        for issued, seconds in trace.pauses:
            assert not issued < (record.admitted_at or 0.0) < issued + seconds, (
                f"request {record.seq} admitted at {record.admitted_at} during the pause "
                f"[{issued}, {issued + seconds})"
            )


@given(scenarios())
def test_after_a_pause_a_probe_flies_alone_and_only_its_clean_return_reopens_admission(scenario):
    """While a probe is in flight nothing else is admitted, and no request other than a probe is admitted after a pause until a probe admitted after that pause has returned."""
    trace = _trace(scenario)
    admitted = _admitted(trace)
    for probe in (r for r in admitted if r.probe):
        assert probe.released_at is not None
        overtaking = [
            r.seq
            for r in admitted
            if (r.seq or 0) > (probe.seq or 0) and (r.admitted_at or 0.0) < probe.released_at
        ]
        assert not overtaking, f"{overtaking} admitted while probe {probe.seq} was in flight"
    for issued, _ in trace.pauses:
        for record in admitted:
            if record.probe or not (record.admitted_at or 0.0) > issued:
                continue
            assert any(
                k.probe
                and (k.seq or 0) < (record.seq or 0)
                and (k.admitted_at or 0.0) >= issued
                and (k.released_at or 0.0) <= (record.admitted_at or 0.0)
                for k in admitted
            ), (
                f"request {record.seq} admitted at {record.admitted_at} after the pause at {issued} with no probe back"
            )


@given(scenarios())
def test_admission_is_fifo_and_cancelled_waiters_take_no_slot(scenario):
    """Non-cancelled waiters are admitted in the order they called `acquire`, cancelled ones are never admitted, and the limiter ends empty."""
    trace = _trace(scenario)
    in_call_order = [r.seq for r in trace.records if not r.cancelled]
    assert in_call_order == list(range(len(in_call_order)))
    assert all(r.seq is None for r in trace.records if r.cancelled)
    assert trace.idle_in_use == 0


@given(scenarios())
def test_each_waiter_is_admitted_as_soon_as_window_pauses_and_queue_allow(scenario):
    """Each request is admitted no later than the first moment, after it arrived and its predecessor was admitted, when fewer than `max_requests` earlier slots are live, no pause runs and no probe is in flight: cancelled waiters hold nothing and block no one."""
    trace = _trace(scenario)
    limit, period, grace = scenario.max_requests, scenario.period, scenario.grace
    pause_spans = [(issued, issued + seconds) for issued, seconds in trace.pauses]
    admitted = _admitted(trace)
    previous_admission = -1.0
    for j, record in enumerate(admitted):
        assert record.admitted_at is not None
        expiries = [_end(r, grace) + period for r in admitted[:j]]
        probes = [(r.admitted_at or 0.0, r.released_at or 0.0) for r in admitted[:j] if r.probe]
        earliest = max(record.called_at, previous_admission)
        candidates = sorted(
            {earliest}
            | {t for t in expiries if t > earliest}
            | {end for _, end in pause_spans if end > earliest}
            | {end for _, end in probes if end > earliest}
        )
        expected = next(
            t
            for t in candidates
            if sum(t < expiry for expiry in expiries) < limit
            and not any(start <= t < end for start, end in pause_spans)
            and not any(start <= t < end for start, end in probes)
        )
        # The limiter sleeps `deadline - now` seconds; `now + (deadline - now)` may land an ulp late.
        assert earliest <= record.admitted_at <= expected + 4 * math.ulp(expected), (
            f"request {record.seq} arrived at {record.called_at}, admissible at {expected}, "
            f"admitted at {record.admitted_at}"
        )
        previous_admission = record.admitted_at
