"""The Recuro emulator's seeded faults over loopback: reproducible, and each of the promised kind."""

from __future__ import annotations

import anyio
import httpx
import pytest

from recuro_async.testing import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    EmulatorConfig,
    RecuroEmulator,
    run_emulator,
)

AUTH = {"Authorization": f"{DEMO_API_KEY}:{DEMO_API_SECRET}"}
UNREACHABLE = "http://127.0.0.1:9/reel.mov"  # the fetch fails; these tests only look at API answers


async def _script(config: EmulatorConfig) -> tuple[list[str], list[tuple[str, str]]]:
    """Send a fixed sequence of requests; return each outcome and the faults recorded."""
    outcomes: list[str] = []
    async with (
        run_emulator(config) as running,
        httpx.AsyncClient(headers=AUTH, trust_env=False) as client,
    ):
        for i in range(40):
            action = ("ListFilters", "ListMedia", "UploadMedia", "GetProgress")[i % 4]
            body = {"action": action, "original_file_url": UNREACHABLE, "file_id": "ids-1.mov"}
            try:
                response = await client.post(running.base_url, json=body)
            except httpx.RemoteProtocolError:
                outcomes.append("dropped")
            else:
                outcomes.append(str(response.status_code))
        faults = [(f.kind, f.action) for f in running.emulator.faults]
    return outcomes, faults


FAULTY = EmulatorConfig(fault_rate=0.25, drop_rate=0.25, latency=0.002, seed=11)


async def test_same_seed_gives_the_same_fault_sequence():
    """Two runs with one seed and one request sequence inject the same faults in the same order."""
    first = await _script(FAULTY)
    second = await _script(FAULTY)
    assert first == second
    outcomes, faults = first
    assert {"500", "dropped"} <= set(outcomes)
    assert {"error500", "drop", "latency"} <= {kind for kind, _ in faults}


async def test_another_seed_gives_another_fault_sequence():
    """A different seed changes which requests are hit."""
    _, faults_a = await _script(FAULTY)
    _, faults_b = await _script(
        EmulatorConfig(fault_rate=0.25, drop_rate=0.25, latency=0.002, seed=12)
    )
    assert faults_a != faults_b


async def test_injected_500_has_no_effect():
    """An injected 500 answers InternalError and the action did not happen."""
    async with (
        run_emulator(EmulatorConfig(fault_rate=1.0)) as running,
        httpx.AsyncClient(headers=AUTH, trust_env=False) as client,
    ):
        response = await client.post(
            running.base_url, json={"action": "UploadMedia", "original_file_url": UNREACHABLE}
        )
        assert response.status_code == 500
        assert response.json()["error_code"] == "InternalError"
        assert running.emulator.media_ids() == []


@pytest.mark.parametrize(
    "body",
    [
        {"action": "UploadMedia", "original_file_url": UNREACHABLE},
        {"action": "DeleteMedia", "file_id": "ids-1.mov"},
    ],
    ids=["json-body", "empty-body"],
)
async def test_dropped_response_is_a_broken_connection_after_the_effect(body):
    """A dropped response reaches the client as a broken connection, yet the action took effect."""
    config = EmulatorConfig(drop_rate=1.0, strict_delete=False)
    async with (
        run_emulator(config) as running,
        httpx.AsyncClient(headers=AUTH, trust_env=False) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(running.base_url, json=body)
        if body["action"] == "UploadMedia":
            assert len(running.emulator.media_ids()) == 1
        assert [e.status for e in running.emulator.log] == [200]


async def test_dropped_response_in_process_raises_the_same_error():
    """Through httpx.ASGITransport a drop surfaces as httpx.RemoteProtocolError too."""
    async with (
        RecuroEmulator(EmulatorConfig(drop_rate=1.0)) as emulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app), headers=AUTH) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("http://e.test/api/1.0/", json={"action": "ListFilters"})


async def test_latency_delays_responses_within_the_bound():
    """Injected latency delays each API response by a recorded amount no larger than the bound."""
    async with (
        run_emulator(EmulatorConfig(latency=0.05)) as running,
        httpx.AsyncClient(headers=AUTH, trust_env=False) as client,
    ):
        began = anyio.current_time()
        for _ in range(5):
            await client.post(running.base_url, json={"action": "ListFilters"})
        took = anyio.current_time() - began
        delays = [f.detail for f in running.emulator.faults if f.kind == "latency"]
    assert len(delays) == 5
    assert all(0 <= d <= 0.05 for d in delays)
    assert took >= sum(delays)


async def test_cli_fault_rate_enables_every_kind():
    """`with_faults(p)` (what --fault-rate does) sets 500s, drops, truncations and job failures."""
    config = EmulatorConfig().with_faults(0.2)
    assert (config.fault_rate, config.drop_rate, config.truncate_rate, config.job_failure_rate) == (
        0.2,
        0.1,
        0.1,
        0.2 / 5,
    )
