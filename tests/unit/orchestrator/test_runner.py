"""The engine against an in-memory service: batches drain, failures isolate, crashes and stops resume."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from orch_fakes import FakeClock, FakeService

from orchestrator import (
    BatchDone,
    ItemDone,
    ItemFailed,
    ItemQueued,
    Journal,
    Phase,
    RemoteStatus,
    Runner,
    RunnerConfig,
    Stage,
    StageChanged,
    build_report,
)
from orchestrator._polling import PollSettings

POLL = PollSettings(min_interval=1.0, max_interval=20.0)


def _inputs(n: int) -> list[str]:
    return [f"https://example.org/media/u{i}.mov" for i in range(n)]


def _config(out: Path, **changes) -> RunnerConfig:
    return RunnerConfig(out_dir=out, poll=POLL, settle=1.0, backoff=0.1, **changes)


async def _run(service, journal_path, inputs, config, *, clock, stop_when=None, abort_when=None):
    """Run one batch; returns the events. `stop_when`/`abort_when` are predicates on events."""
    events = []
    async with (
        Journal(journal_path, service.job_spec()) as journal,
        Runner(service, journal, config=config, clock=clock) as runner,
    ):
        async for event in runner.run(inputs):
            events.append(event)
            if abort_when is not None and abort_when(event):
                runner.abort()
            if stop_when is not None and stop_when(event):
                runner.stop()
    return events


def _of(events, kind):
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def service(clock):
    return FakeService(clock)


async def test_a_batch_drains_and_cleans_up(tmp_path, clock, service):
    """Every item is restored byte for byte, started once, and its media deleted."""
    events = await _run(service, tmp_path / "j.sqlite", _inputs(25), _config(tmp_path), clock=clock)
    done = _of(events, ItemDone)
    assert len(done) == 25
    assert len(_of(events, ItemQueued)) == 25
    assert events[-1] == BatchDone(done=25, failed=0, parked=0, pending=0, at=events[-1].at)
    for event in done:
        file_id = service.media_for(event.key).file_id
        assert await anyio.Path(event.output_path).read_bytes() == service.content(file_id)
    assert {m.starts for m in service.media.values()} == {1}
    assert service.calls["upload"] == 25
    assert service.live() == []


async def test_transitions_follow_the_table_and_reach_the_stream(tmp_path, clock, service):
    """Each item's StageChanged events walk the happy path in order."""
    events = await _run(service, tmp_path / "j.sqlite", _inputs(3), _config(tmp_path), clock=clock)
    key = _inputs(3)[0]
    path = [e.new for e in _of(events, StageChanged) if e.key == key]
    assert path == [
        Stage.STAGED,
        Stage.UPLOADING,
        Stage.UPLOADED,
        Stage.READY,
        Stage.STARTING,
        Stage.RUNNING,
        Stage.RESTORED,
        Stage.DOWNLOADING,
        Stage.DOWNLOADED,
        Stage.DONE,
    ]


async def test_a_job_that_never_ends_times_out(tmp_path, clock, service):
    """An item stuck past phase_timeout fails with StageTimeout and its media is deleted."""
    service.job_time = 10_000.0
    events = await _run(
        service,
        tmp_path / "j.sqlite",
        _inputs(2),
        _config(tmp_path, phase_timeout=300.0),
        clock=clock,
    )
    assert {e.error_code for e in _of(events, ItemFailed)} == {"StageTimeout"}
    assert service.live() == []


async def test_keep_remote_keeps_media(tmp_path, clock, service):
    """With keep_remote nothing is deleted."""
    await _run(
        service, tmp_path / "j.sqlite", _inputs(4), _config(tmp_path, keep_remote=True), clock=clock
    )
    assert len(service.live()) == 4
    assert service.calls["delete"] == 0


async def test_a_failing_job_fails_only_its_item(tmp_path, clock, service):
    """The failed job's item carries the server's code; the others finish; its media is deleted."""
    service.fail_jobs.add("u2.")
    events = await _run(service, tmp_path / "j.sqlite", _inputs(6), _config(tmp_path), clock=clock)
    (failed,) = _of(events, ItemFailed)
    assert failed.key.endswith("u2.mov")
    assert failed.error_code == "JobFailed"
    assert len(_of(events, ItemDone)) == 5
    assert events[-1].failed == 1
    assert service.live() == []


async def test_polling_spends_about_one_progress_call_per_item(tmp_path, clock, service):
    """Media completion is predicted from what finished before: about one GetProgress per item."""
    await _run(service, tmp_path / "j.sqlite", _inputs(60), _config(tmp_path), clock=clock)
    assert service.calls["status"] <= 1.25 * 60, dict(service.calls)
    assert service.calls["sweep"] <= 60 * 1.25, dict(service.calls)


async def test_webhook_mode_needs_almost_no_polling(tmp_path, clock, service):
    """With callbacks delivering the transitions, requests per item stay <= 3.1."""
    config = _config(tmp_path, notify_url="https://hooks.example/tok/")
    runner_box: list[Runner] = []

    async def deliver(remote_id: str, status: RemoteStatus) -> None:
        await anyio.lowlevel.checkpoint()
        runner_box[0].notify(remote_id, status)

    service.notify = deliver
    async with (
        Journal(tmp_path / "j.sqlite", service.job_spec()) as journal,
        Runner(service, journal, config=config, clock=clock) as runner,
    ):
        runner_box.append(runner)
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.callbacks_forever)
            events = [event async for event in runner.run(_inputs(50))]
            tg.cancel_scope.cancel()
    assert events[-1].done == 50
    assert service.requests() / 50 <= 3.1, dict(service.calls)


async def test_unknown_upload_that_arrived_is_adopted(tmp_path, clock, service):
    """An UploadMedia answered by a dropped connection is reconciled from ListMedia, not repeated."""
    service.upload_unknown.add("u1.")
    events = await _run(service, tmp_path / "j.sqlite", _inputs(3), _config(tmp_path), clock=clock)
    assert events[-1].done == 3
    assert service.calls["upload"] == 3
    assert service.live() == []
    async with Journal(tmp_path / "j.sqlite", service.job_spec()) as journal:
        intents = await journal.intents(_inputs(3)[1])
    assert [i.outcome for i in intents if i.kind == "upload"] == ["adopted"]


async def test_unknown_upload_that_never_arrived_is_made_again(tmp_path, clock, service):
    """No new media and no fetch: the upload is made again, once."""
    service.upload_lost.add("u0.")
    events = await _run(service, tmp_path / "j.sqlite", _inputs(2), _config(tmp_path), clock=clock)
    assert events[-1].done == 2
    assert service.calls["upload"] == 3
    assert len(service.media) == 2


async def test_foreign_media_makes_an_upload_ambiguous(tmp_path, clock, service):
    """Two unknown media for one unanswered upload: the item is parked and nothing is deleted."""
    service.upload_unknown.add("u0.")
    service.foreign_upload_on_unknown = True
    events = await _run(service, tmp_path / "j.sqlite", _inputs(2), _config(tmp_path), clock=clock)
    (parked,) = _of(events, ItemFailed)
    assert parked.parked
    assert parked.error_code == "UploadOutcomeUnknown"
    assert events[-1].parked == 1
    assert len(service.live()) == 2  # ours (unproven) and the foreign one, both left alone


async def test_unknown_start_is_not_repeated(tmp_path, clock, service):
    """A StartJob with a lost answer is proved started by GetProgress; no second job."""
    service.start_unknown.add("u0.")
    events = await _run(service, tmp_path / "j.sqlite", _inputs(2), _config(tmp_path), clock=clock)
    assert events[-1].done == 2
    assert {m.starts for m in service.media.values()} == {1}
    assert service.calls["start"] == 2


@pytest.mark.parametrize(
    "crash_at", [Stage.UPLOADING, Stage.STARTING, Stage.RUNNING, Stage.DOWNLOADED]
)
async def test_abort_and_rerun_finishes_everything_once(tmp_path, clock, service, crash_at):
    """Aborting at any stage and rerunning the same batch restores every item exactly once."""
    journal = tmp_path / "j.sqlite"
    inputs = _inputs(8)
    first = await _run(
        service,
        journal,
        inputs,
        _config(tmp_path),
        clock=clock,
        abort_when=lambda e: isinstance(e, StageChanged) and e.new is crash_at,
    )
    assert first[-1].interrupted
    second = await _run(service, journal, inputs, _config(tmp_path), clock=clock)
    assert second[-1].done == 8
    assert all(m.starts <= 1 for m in service.media.values())
    assert sum(m.starts for m in service.media.values()) == 8
    assert service.live() == []
    assert len(_of(second, ItemDone)) == 8


async def test_stop_admits_nothing_new_and_resumes(tmp_path, clock, service):
    """After stop() no new upload starts; the rerun continues from the journal."""
    journal = tmp_path / "j.sqlite"
    inputs = _inputs(10)
    uploads_at_stop: list[int] = []

    def stop_when(event) -> bool:
        if isinstance(event, StageChanged) and event.new is Stage.UPLOADED:
            uploads_at_stop.append(service.calls["upload"])
            return True
        return False

    first = await _run(
        service, journal, inputs, _config(tmp_path), clock=clock, stop_when=stop_when
    )
    assert first[-1].interrupted
    assert service.calls["upload"] == uploads_at_stop[0]
    second = await _run(service, journal, inputs, _config(tmp_path), clock=clock)
    assert second[-1].done == 10
    assert service.calls["upload"] == 10


async def test_done_items_are_skipped_and_lost_outputs_redone(tmp_path, clock, service):
    """A rerun skips done items whose outputs are on disk and restores a deleted one again."""
    journal = tmp_path / "j.sqlite"
    first = await _run(service, journal, _inputs(3), _config(tmp_path), clock=clock)
    lost = _of(first, ItemDone)[0]
    await anyio.Path(lost.output_path).unlink()
    second = await _run(service, journal, _inputs(3), _config(tmp_path), clock=clock)
    skipped = [e for e in _of(second, ItemDone) if e.skipped]
    redone = [e for e in _of(second, ItemDone) if not e.skipped]
    assert len(skipped) == 2
    assert [e.key for e in redone] == [lost.key]
    assert await anyio.Path(lost.output_path).exists()
    assert service.calls["upload"] == 4


async def test_retry_failed_tries_failures_again(tmp_path, clock, service):
    """Failed items stay failed on a plain rerun and are retried with retry_failed."""
    journal = tmp_path / "j.sqlite"
    service.fail_jobs.add("u1.")
    await _run(service, journal, _inputs(3), _config(tmp_path), clock=clock)
    plain = await _run(service, journal, _inputs(3), _config(tmp_path), clock=clock)
    assert plain[-1].failed == 1
    assert service.calls["upload"] == 3
    service.fail_jobs.clear()
    retried = await _run(
        service, journal, _inputs(3), _config(tmp_path, retry_failed=True), clock=clock
    )
    assert retried[-1].done == 3
    assert service.calls["upload"] == 4
    async with Journal(journal, service.job_spec()) as j:
        items = await j.load()
    report = build_report(items, service="fake", settings={})
    assert report.totals == {"done": 3, "failed": 0, "parked": 0, "pending": 0}
    assert [i.attempts for i in report.items] == [0, 1, 0]


async def test_local_files_without_a_stager_fail_cleanly(tmp_path, clock, service):
    """A local input with no staging server fails its item with a reason; URLs still finish."""
    local = tmp_path / "clip.mov"
    local.write_bytes(b"x")
    events = await _run(
        service, tmp_path / "j.sqlite", [str(local), *_inputs(1)], _config(tmp_path), clock=clock
    )
    (failed,) = _of(events, ItemFailed)
    assert failed.error_code == "NoStager"
    assert events[-1].done == 1


async def test_outputs_never_collide(tmp_path, clock, service):
    """Two inputs with the same name get distinct outputs."""
    inputs = ["https://a.example/x/clip.mov", "https://b.example/y/clip.mov"]
    events = await _run(service, tmp_path / "j.sqlite", inputs, _config(tmp_path), clock=clock)
    paths = sorted(Path(e.output_path).name for e in _of(events, ItemDone))
    assert paths == ["clip-2.mp4", "clip.mp4"]


async def test_a_runner_runs_one_batch_inside_its_context(tmp_path, clock, service):
    """run() needs the context and cannot be called twice."""
    async with Journal(tmp_path / "j.sqlite", service.job_spec()) as journal:
        runner = Runner(service, journal, config=_config(tmp_path), clock=clock)
        with pytest.raises(RuntimeError, match="async with"):
            runner.run([])
        async with runner:
            events = [e async for e in runner.run([])]
            assert events == [BatchDone(0, 0, 0, 0, at=events[0].at)]
            with pytest.raises(RuntimeError, match="one batch"):
                runner.run([])


async def test_leaving_the_context_early_stops_the_batch(tmp_path, clock, service):
    """Breaking out of the event loop and leaving the context stops the batch cleanly."""
    async with (
        Journal(tmp_path / "j.sqlite", service.job_spec()) as journal,
        Runner(service, journal, config=_config(tmp_path), clock=clock) as runner,
    ):
        async for event in runner.run(_inputs(5)):
            if isinstance(event, StageChanged) and event.new is Stage.RUNNING:
                break
    assert runner.stopping
    async with Journal(tmp_path / "j.sqlite", service.job_spec()) as journal:
        stages = {item.stage for item in await journal.load()}
    assert not stages & {Stage.UPLOADING}


def test_phase_values_are_stable():
    """The phases adapters report are plain strings."""
    assert Phase.RESTORED.value == "restored"
