"""Per-request latency as a seeded uniform range (issue 14 item 2): `latency_min`..`latency` seconds."""

from __future__ import annotations

import anyio
import httpx
import pytest

from recuro_async.testing import DEMO_API_KEY, DEMO_API_SECRET, EmulatorConfig, RecuroEmulator
from recuro_async.testing._cli import _parser
from recuro_async.testing._faults import FaultPlan

AUTH = {"Authorization": f"{DEMO_API_KEY}:{DEMO_API_SECRET}"}


def _plan(seed: int, low: float, high: float) -> FaultPlan:
    return FaultPlan(
        seed,
        error_rate=0,
        drop_rate=0,
        truncate_rate=0,
        job_failure_rate=0,
        latency=high,
        latency_min=low,
    )


def test_delays_are_drawn_within_the_range_and_reproducible_by_seed():
    """Every delay lies in [min, max], spreads over the range, and the same seed draws the same ones."""
    plan = _plan(7, 0.02, 0.4)
    draws = [plan.delay("ListMedia", None) for _ in range(200)]
    again = _plan(7, 0.02, 0.4)
    assert [again.delay("ListMedia", None) for _ in range(200)] == draws
    assert all(0.02 <= d <= 0.4 for d in draws)
    assert min(draws) < 0.06
    assert max(draws) > 0.36
    other = _plan(8, 0.02, 0.4)
    assert [other.delay("ListMedia", None) for _ in range(200)] != draws
    assert [r.detail for r in plan.record] == draws


def test_a_single_latency_keeps_its_meaning():
    """`latency` alone still draws from [0, latency], the same delays as before `latency_min` existed."""
    plan = _plan(3, 0.0, 0.5)
    draws = [plan.delay("GetProgress", "ids-1.mov") for _ in range(50)]
    assert all(0 <= d <= 0.5 for d in draws)
    assert min(draws) < 0.05
    assert EmulatorConfig(latency=0.5).latency_min == 0


def test_the_range_is_validated_naming_both_fields():
    """A minimum above the maximum is refused before anything runs."""
    with pytest.raises(ValueError, match="latency_min must be at most latency"):
        EmulatorConfig(latency_min=0.5, latency=0.1)
    with pytest.raises(ValueError, match="latency_min"):
        EmulatorConfig(latency_min=-1, latency=0.1)


@pytest.mark.parametrize(
    ("text", "expected"), [("0.02-0.4", (0.02, 0.4)), ("0.3", (0.0, 0.3)), ("0-0", (0.0, 0.0))]
)
def test_cli_latency_option(text, expected):
    """`--latency MIN-MAX` sets the range; one number means 0 to it."""
    assert _parser().parse_args(["--latency", text]).latency == expected


@pytest.mark.parametrize("text", ["0.4-0.02", "fast", "-1"])
def test_cli_latency_option_refuses_bad_ranges(text, capsys):
    """A reversed, negative or non-numeric range is a usage error naming the option."""
    with pytest.raises(SystemExit):
        _parser().parse_args(["--latency", text])
    assert "--latency" in capsys.readouterr().err


async def test_each_api_response_waits_its_drawn_delay():
    """The emulator holds each API response for the delay its plan drew, on the event loop's clock."""
    config = EmulatorConfig(latency_min=0.02, latency=0.05, seed=5)
    async with (
        RecuroEmulator(config) as emulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app), headers=AUTH) as client,
    ):
        took = []
        for _ in range(4):
            began = anyio.current_time()
            response = await client.post("http://e.test/api/1.0/", json={"action": "ListMedia"})
            took.append(anyio.current_time() - began)
            assert response.status_code == 200
    delays = [f.detail for f in emulator.faults if f.kind == "latency"]
    assert len(delays) == 4
    assert all(0.02 <= d <= 0.05 for d in delays)
    assert all(t >= d for t, d in zip(took, delays, strict=True))
    replay = _plan(5, 0.02, 0.05)
    assert [replay.delay("ListMedia", None) for _ in range(4)] == delays
