"""Speculation is earned: a StartJob on a predicted-ready media is sent only when the predictions prove right.

On a virtual clock that stands still while the engine's worker threads run, so the timeline is the same on
every run (issue 10, case 2's last sentence; issue 14, item 3).
"""

from __future__ import annotations

import collections
from pathlib import Path

import anyio
from orch_fakes import FakeService, VirtualClock

from orchestrator import Journal, Phase, Runner, RunnerConfig
from orchestrator._polling import PollSettings

POLL = PollSettings()  # the defaults: contacts 2-60 s apart
N = 40


def _inputs(n: int) -> list[str]:
    return [f"https://example.org/media/u{i:02d}.mov" for i in range(n)]


def _analysis(source: str) -> float:
    """Analysis takes 30 s for the first input up to 108 s for the last (longer media, longer analysis)."""
    return 30.0 + 2.0 * int(source.rsplit("/u", 1)[1][:2])


def _config(out: Path) -> RunnerConfig:
    return RunnerConfig(out_dir=out, poll=POLL, settle=1.0, backoff=0.1)


async def _run(
    service: FakeService,
    clock: VirtualClock,
    journal_path: Path,
    *,
    abort_after: float | None = None,
) -> int:
    """One run of the batch; aborted `abort_after` seconds in (a kill, as far as the journal can tell)."""
    done = 0
    async with (
        Journal(journal_path, service.job_spec(), wall=clock.monotonic) as journal,
        Runner(service, journal, config=_config(journal_path.parent), clock=clock) as runner,
        anyio.create_task_group() as tg,
    ):
        if abort_after is not None:

            async def kill() -> None:
                await clock.sleep(abort_after)
                runner.abort()

            tg.start_soon(kill)
        async for event in runner.run(_inputs(N)):
            done = getattr(event, "done", done)
        tg.cancel_scope.cancel()
    return done


async def test_a_fresh_batch_earns_speculation(tmp_path, monkeypatch):
    """Analyses of unknown length: StartJobs go out at predictions that proved right, not on a guess."""
    clock = VirtualClock()
    service = FakeService(clock, media_time=_analysis, job_time=20.0)
    service.start_when_predicted = True
    with clock.counting_threads(monkeypatch):
        async with clock.autoadvance():
            done = await _run(service, clock, tmp_path / "j.sqlite")
    assert done == N
    assert {m.starts for m in service.media.values()} == {1}
    refused = service.calls["start"] - N
    assert refused <= N // 10, dict(service.calls)
    # the analyses take 30-108 s and nothing tells them apart beforehand: each item is probed once or twice
    # to learn its own rate, then started at its prediction (7.4 requests per item when every prediction
    # was a StartJob)
    assert service.status_phases[Phase.PROCESSING] + service.status_phases[Phase.READY] <= 2 * N
    assert service.requests() / N <= 5.0, dict(service.calls)  # 7.4 before; sweeps add 0.6 here


async def test_a_resume_does_not_spray_premature_starts(tmp_path, monkeypatch):
    """Resumed 25 s into analyses of 30-108 s: the rerun's StartJobs are not refused by the dozen."""
    clock = VirtualClock()
    service = FakeService(clock, media_time=_analysis, job_time=20.0)
    service.start_when_predicted = True
    journal_path = tmp_path / "j.sqlite"
    with clock.counting_threads(monkeypatch):
        async with clock.autoadvance():
            await _run(service, clock, journal_path, abort_after=25.0)
            assert service.calls["upload"] >= N * 3 // 4
            first = collections.Counter(service.calls)
            done = await _run(service, clock, journal_path)
    assert done == N
    assert {m.starts for m in service.media.values()} == {1}
    second = collections.Counter(service.calls)
    second.subtract(first)
    refused = second["start"] - N
    # each refusal is a request that learned nothing; a probe would have read the media's progress
    assert refused <= N // 10, dict(second)
    assert sum(second.values()) / N <= 4.5, dict(second)  # 6.4 when every prediction was a StartJob
