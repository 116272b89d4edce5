"""Never destroy paid work: our own failures leave items resumable, with their media kept."""

from __future__ import annotations

from orch_fakes import FakeClock, FakeService

from orchestrator import BatchDone, ItemDone, ItemFailed, Journal, Runner, RunnerConfig, Stage
from orchestrator._polling import PollSettings
from orchestrator._service import BatchFatalError

POLL = PollSettings(min_interval=1.0, max_interval=20.0)
INPUTS = ["https://example.org/media/a.mov", "https://example.org/media/b.mov"]


class DownloadsBreak(FakeService):
    """Every download of `a` fails with `error` (the network, or our disk)."""

    def __init__(self, clock: FakeClock, error: Exception) -> None:
        super().__init__(clock)
        self.error = error
        self.broken = True

    async def download(self, url, dest, *, progress):  # type: ignore[no-untyped-def]
        if self.broken and self.media[url.removeprefix("fake://result/")].source.endswith("a.mov"):
            raise self.error
        return await super().download(url, dest, progress=progress)


async def _run(service, tmp_path, clock):
    config = RunnerConfig(out_dir=tmp_path, poll=POLL, settle=1.0, backoff=0.1, step_retries=2)
    async with (
        Journal(tmp_path / "j.sqlite", service.job_spec()) as journal,
        Runner(service, journal, config=config, clock=clock) as runner,
    ):
        events = [event async for event in runner.run(INPUTS)]
        return events, {item.input: item for item in runner.items}


async def test_a_download_that_keeps_failing_leaves_the_item_resumable(tmp_path):
    """Transport failures past the retries: not failed, media kept, and a rerun finishes it."""
    clock = FakeClock()
    service = DownloadsBreak(clock, ConnectionError("connection reset"))
    events, items = await _run(service, tmp_path, clock)
    (stopped,) = [e for e in events if isinstance(e, ItemFailed)]
    assert stopped.resumable
    assert items[INPUTS[0]].stage is Stage.DOWNLOADING
    assert service.media_for(INPUTS[0]).deleted is False, "the restored result was deleted"
    assert events[-1].pending == 1
    service.broken = False
    events, items = await _run(service, tmp_path, clock)
    assert {i.stage for i in items.values()} == {Stage.DONE}
    assert service.media_for(INPUTS[0]).starts == 1, "a second paid job"
    assert service.live() == []


async def test_a_full_disk_stops_the_batch_and_keeps_every_item_resumable(tmp_path):
    """A full disk is no item's failure: the batch stops saying so; nothing is failed or deleted."""
    clock = FakeClock()
    service = DownloadsBreak(clock, BatchFatalError("the disk is full writing a.mp4.part"))
    events, items = await _run(service, tmp_path, clock)
    done = events[-1]
    assert isinstance(done, BatchDone)
    assert done.error is not None
    assert "disk is full" in done.error
    assert not [e for e in events if isinstance(e, ItemFailed)]
    assert Stage.FAILED not in {i.stage for i in items.values()}
    assert service.media_for(INPUTS[0]).deleted is False


async def test_an_empty_local_input_is_refused_before_any_request(tmp_path):
    """A 0-byte local file fails with EmptyInput; nothing of it is staged or uploaded."""
    clock = FakeClock()
    service = FakeService(clock)
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    config = RunnerConfig(out_dir=tmp_path, poll=POLL, settle=1.0, backoff=0.1)
    async with (
        Journal(tmp_path / "j.sqlite", service.job_spec()) as journal,
        Runner(service, journal, config=config, clock=clock) as runner,
    ):
        events = [event async for event in runner.run([str(empty)])]
    (failed,) = [e for e in events if isinstance(e, ItemFailed)]
    assert failed.error_code == "EmptyInput"
    assert "empty" in failed.error_message
    assert service.calls["upload"] == 0
    assert not [e for e in events if isinstance(e, ItemDone)]
