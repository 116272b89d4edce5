"""Speculation is earned: a StartJob on a predicted-ready media is sent only when the predictions prove right.

On a virtual clock that stands still while the engine's worker threads run, so the timeline is the same on
every run (issue 10, case 2's last sentence; issue 14, item 3).
"""

from __future__ import annotations

import collections
from pathlib import Path

import anyio
import attrs
from orch_fakes import FakeMedia, FakeService, VirtualClock

from orchestrator import Journal, Phase, RemoteStatus, Runner, RunnerConfig
from orchestrator._polling import PollSettings
from orchestrator._service import StartRefusedError

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


class OtherCodes(FakeService):
    """Refuses a premature (or second) StartJob with a code of its own, as the document names none; the
    last input's analysis takes three times as long as its progress says (coarse progress misleads)."""

    def _media_time(self, media: FakeMedia) -> float:
        return 90.0 if media.source.endswith(f"u{N - 1:02d}.mov") else 30.0

    def _status(self, media: FakeMedia) -> RemoteStatus:
        status = super()._status(media)
        if status.phase is Phase.PROCESSING:
            elapsed = self.clock.monotonic() - media.uploaded_at
            return attrs.evolve(status, fraction=min(elapsed / 30.0, 0.99))
        return status

    async def start(self, remote_id: str, *, notify_url: str | None) -> None:
        media = self.media.get(remote_id)
        if media is not None and not media.deleted and self._phase(media) is not Phase.READY:
            self.calls["start"] += 1
            code = "JobExists" if media.starts else "MediaNotCompleted"
            raise StartRefusedError(code, "refused")
        await super().start(remote_id, notify_url=notify_url)


async def test_refusals_in_codes_we_never_saw_are_judged_by_the_media_state(tmp_path, monkeypatch):
    """The refusal code means nothing to us: the media's state (GetProgress) says "not ready", the code is
    learned, and later refusals in it cost no GetProgress; every item ends done with one job."""
    clock = VirtualClock()
    service = OtherCodes(clock, job_time=20.0)
    service.start_when_predicted = True
    with clock.counting_threads(monkeypatch):
        async with clock.autoadvance():
            done = await _run(service, clock, tmp_path / "j.sqlite")
    assert done == N
    assert {m.starts for m in service.media.values()} == {1}
    refused = service.calls["start"] - N
    assert refused >= 1, "no StartJob was refused: the test did not reach the case"
    async with Journal(tmp_path / "j.sqlite", service.job_spec()) as journal:
        starts = [i for i in await journal.intents() if i.kind == "start"]
    outcomes = collections.Counter(i.outcome for i in starts)
    assert set(outcomes) <= {"started", "not-ready", "not-sent"}
    # the first refusals (those on the wire together: the slow-start window, still small) were judged by
    # the media's state; then the code was known to mean "not ready" and later refusals cost no GetProgress
    assert 1 <= outcomes["not-sent"] <= 3, outcomes
    assert outcomes["not-ready"] >= 1, f"no refusal was recognised by its learned code: {outcomes}"
    assert outcomes["not-sent"] + outcomes["not-ready"] == refused, outcomes
