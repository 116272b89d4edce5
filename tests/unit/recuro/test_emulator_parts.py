"""The emulator's small parts on fake times: rate window, fault plan, timelines, slots, config, ranges."""

from __future__ import annotations

import pytest

from recuro_async.testing import EmulatorConfig, LogEntry
from recuro_async.testing._app import _encode
from recuro_async.testing._catalog import ApiError
from recuro_async.testing._faults import FaultPlan
from recuro_async.testing._lifecycle import JobSlots, Segment, locate, timeline
from recuro_async.testing._ratelimit import SlidingWindowLimit


def test_window_admits_limit_then_refuses_until_the_oldest_ages_out():
    """The 201st arrival within 60 s is refused; it passes once the first is 60 s old."""
    limit = SlidingWindowLimit(200, 60.0)
    for i in range(200):
        assert limit.retry_after("k", i * 0.1) is None
    assert limit.retry_after("k", 20.0) == pytest.approx(40.0)
    assert limit.retry_after("k", 59.99) is not None
    assert limit.retry_after("k", 60.0) is None


def test_window_is_per_key_and_refusals_are_not_counted():
    """Each key has its own window, and refused requests do not extend the wait."""
    limit = SlidingWindowLimit(2, 10.0)
    assert limit.retry_after("a", 0) is None
    assert limit.retry_after("a", 0) is None
    for t in range(1, 9):
        assert limit.retry_after("a", t) is not None
    assert limit.retry_after("b", 5) is None
    assert limit.retry_after("a", 10) is None
    assert limit.in_window("a", 10) == 1


@pytest.mark.parametrize(("refusal", "status"), [("400", 400), ("429", 429)])
def test_refusal_forms(refusal, status):
    """The refusal is 400 RateLimitExceeded, or 429 with a whole-second Retry-After."""
    limit = SlidingWindowLimit(1, 2.5, refusal)
    limit.admit("k", 0.0)
    with pytest.raises(ApiError) as info:
        limit.admit("k", 0.5)
    assert (info.value.status, info.value.code) == (status, "RateLimitExceeded")
    assert dict(info.value.headers).get("retry-after") == ("2" if refusal == "429" else None)


def _plan(seed: int) -> FaultPlan:
    return FaultPlan(
        seed, error_rate=0.3, drop_rate=0.3, truncate_rate=0.3, job_failure_rate=0.3, latency=0.1
    )


def _run(plan: FaultPlan) -> list[object]:
    out: list[object] = []
    for i in range(50):
        out.append(plan.server_error("A", None))
        out.append(plan.drop("A", None, 100))
        out.append(plan.truncate(None, 1000 + i))
        out.append(plan.delay("A", None))
        out.append(plan.job_failure(f"f{i}"))
    return out


def test_fault_plan_is_reproducible_per_seed():
    """The same seed draws the same faults; another seed draws others."""
    assert _run(_plan(1)) == _run(_plan(1))
    assert _run(_plan(1)) != _run(_plan(2))


def test_fault_kinds_draw_independently():
    """Drawing latency more often does not shift the sequence of 500s."""
    a, b = _plan(5), _plan(5)
    errors_a = [a.server_error("A", None) for _ in range(30)]
    errors_b = []
    for _ in range(30):
        b.delay("A", None)
        errors_b.append(b.server_error("A", None))
    assert errors_a == errors_b


def test_truncation_always_sends_something_and_never_everything():
    """A truncated body keeps at least one byte and loses at least one."""
    plan = FaultPlan(0, error_rate=0, drop_rate=0, truncate_rate=1.0, job_failure_rate=0, latency=0)
    cuts = [plan.truncate(None, n) for n in range(2, 200)]
    assert all(c is not None and 1 <= c < n for c, n in zip(cuts, range(2, 200), strict=True))
    assert plan.truncate(None, 1) is None


def test_timeline_and_locate():
    """Segments split a duration by share; locate gives the state and its progress, None after the end."""
    segments = timeline(10.0, 10.0, (("A", 0.5), ("B", 0.5)))
    assert segments == (Segment("A", 10.0, 15.0), Segment("B", 15.0, 20.0))
    assert locate(segments, 10.0) == ("A", 0.0)
    assert locate(segments, 12.5) == ("A", 50.0)
    assert locate(segments, 15.0) == ("B", 0.0)
    assert locate(segments, 20.0) is None
    assert locate((Segment("Q", 1.0, 1.0), *segments), 10.0) == ("A", 0.0)


def test_job_slots_queue_first_come_first_served():
    """With two slots, the third job starts when the first slot frees; a failure frees it early."""
    slots = JobSlots(2)
    assert slots.reserve(0.0, 10.0, None) == (0.0, 10.0, None)
    assert slots.reserve(0.0, 20.0, 0.5) == (0.0, 20.0, 10.0)
    start, end, _ = slots.reserve(1.0, 5.0, None)
    assert (start, end) == (10.0, 15.0)
    assert slots.queued(11.0) == 1


def test_quirks_encoding():
    """Quirks give odd key case and string progress; without them progress is a number."""
    value = {"state": "JobRunning", "progress": 42.5, "file_id": "ids-1.mov"}
    assert (
        _encode(value, quirks=False)
        == b'{"state": "JobRunning", "progress": 42.5, "file_id": "ids-1.mov"}'
    )
    assert _encode([value], quirks=True) == (
        b'[{"STATE": "JobRunning", "Progress": "42.5", "File_ID": "ids-1.mov"}]'
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_scale": 0},
        {"rate_limit": 0},
        {"rate_period": -1},
        {"refusal": "418"},
        {"fault_rate": 1.5},
        {"max_concurrent_jobs": 0},
        {"bandwidth": 0},
        {"credentials": {}},
        {"credentials": {"a:b": "c"}},
        {"public_url": "ftp://x"},
    ],
)
def test_config_validation(kwargs):
    """Invalid settings raise ValueError naming the field."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EmulatorConfig(**kwargs)


def test_config_repr_hides_secrets_and_scales_the_window():
    """The repr shows no secret; the rate window is rate_period * time_scale."""
    config = EmulatorConfig(credentials={"key": "very-secret-value"}, time_scale=0.5)
    assert "very-secret-value" not in repr(config)
    assert config.rate_window == 30.0
    assert config.scaled(4.0) == 2.0


def test_log_entry_json_has_exactly_five_keys():
    """A log entry serialises to the five documented keys."""
    entry = LogEntry(1.5, "127.0.0.1:1", "GetProgress", None, 400)
    assert entry.to_json() == {
        "time": 1.5,
        "client": "127.0.0.1:1",
        "action": "GetProgress",
        "file_id": None,
        "status": 400,
    }
