"""Failures our own crash caused are never the item's failure (issue 10, case 1).

The service fetches a local input from our staging server, which dies with our process (or, in the same
run, may cut a fetch). Media whose ingest then failed ("could not fetch original_file_url") is uploaded
again, with or without `--keep-remote`, a bounded number of times, instead of failing the item.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from orch_fakes import FakeClock, FakeMedia, FakeService

from orchestrator import (
    ItemDone,
    ItemFailed,
    Journal,
    Phase,
    RemoteStatus,
    Runner,
    RunnerConfig,
    Stage,
    StageChanged,
    StagedSource,
)
from orchestrator._polling import PollSettings

POLL = PollSettings(min_interval=1.0, max_interval=20.0)


class IngestDiesWithUs(FakeService):
    """Media uploaded while `alive` is False lose their fetch: their ingest fails, as our stager died."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.lost: set[str] = set()
        self.alive = True

    async def upload(self, source_url: str, *, notify_url: str | None) -> str:
        file_id = await super().upload(source_url, notify_url=notify_url)
        if not self.alive:
            self.lost.add(file_id)
        return file_id

    def _status(self, media: FakeMedia) -> RemoteStatus:
        if media.file_id in self.lost:
            return RemoteStatus(
                Phase.FAILED,
                error_code="MediaUploadFailed",
                error_message="Could not fetch original_file_url (ReadError)",
            )
        return super()._status(media)

    def _phase(self, media: FakeMedia) -> Phase:
        return Phase.FAILED if media.file_id in self.lost else super()._phase(media)


class FakeStager:
    """Serves nothing; hands out unguessable URLs, as the local file server does."""

    async def stage(self, path: Path, *, token: str | None = None) -> StagedSource:
        token = token or secrets.token_urlsafe(8)
        return StagedSource(source=f"http://stage.invalid/{token}/{path.name}", token=token)

    def fetches(self, token: str) -> int | None:
        return 0

    async def unstage(self, token: str) -> None:
        pass


async def _run(service, journal_path, inputs, config, *, clock, stop_on_upload=False):
    events = []
    async with (
        Journal(journal_path, service.job_spec()) as journal,
        Runner(service, journal, config=config, clock=clock, stager=FakeStager()) as runner,
    ):
        async for event in runner.run(inputs):
            events.append(event)
            if stop_on_upload and isinstance(event, StageChanged) and event.new is Stage.UPLOADED:
                runner.abort()
    return events


@pytest.mark.parametrize("keep_remote", [False, True])
async def test_an_ingest_lost_to_our_crash_is_uploaded_again(tmp_path, keep_remote):
    """The killed run's media failed to ingest; the rerun uploads again and the item ends done."""
    clock = FakeClock()
    service = IngestDiesWithUs(clock)
    source = tmp_path / "reel.mov"
    source.write_bytes(b"movie")
    (tmp_path / "out").mkdir()
    config = RunnerConfig(
        out_dir=tmp_path / "out", poll=POLL, settle=1.0, backoff=0.1, keep_remote=keep_remote
    )
    journal = tmp_path / "j.sqlite"
    service.alive = False  # the first run dies right after UploadMedia was answered
    await _run(service, journal, [str(source)], config, clock=clock, stop_on_upload=True)
    assert service.calls["upload"] == 1
    service.alive = True
    events = await _run(service, journal, [str(source)], config, clock=clock)
    failed = [e for e in events if isinstance(e, ItemFailed)]
    assert failed == []
    assert len([e for e in events if isinstance(e, ItemDone)]) == 1
    assert service.calls["upload"] == 2
    lost = next(iter(service.lost))
    assert service.media[lost].deleted is (not keep_remote)
    assert service.media[lost].starts == 0, "no job is ever started on the lost media"


async def test_an_ingest_that_keeps_failing_is_the_items_own_after_three_uploads(tmp_path):
    """A staged input whose ingest fails every time (the input itself is bad) is uploaded three times in
    all, its failed media deleted each time, then the item fails with the service's reason."""
    clock = FakeClock()
    service = IngestDiesWithUs(clock)
    service.alive = False  # no crash: the service simply cannot ingest it
    source = tmp_path / "reel.mov"
    source.write_bytes(b"movie")
    config = RunnerConfig(out_dir=tmp_path / "out", poll=POLL, settle=1.0, backoff=0.1)
    events = await _run(service, tmp_path / "j.sqlite", [str(source)], config, clock=clock)
    (failed,) = [e for e in events if isinstance(e, ItemFailed)]
    assert failed.error_code == "MediaUploadFailed"
    assert service.calls["upload"] == 3
    assert service.live() == []


async def test_the_largest_inputs_are_uploaded_first(tmp_path):
    """The service's processing time grows with size, so the batch starts the longest work first."""
    clock = FakeClock()
    service = IngestDiesWithUs(clock)
    sizes = [10, 5000, 300, 70_000, 1]
    paths = []
    for n, size in enumerate(sizes):
        path = tmp_path / f"in-{n}.mov"
        path.write_bytes(b"x" * size)
        paths.append(path)
    (tmp_path / "out").mkdir()
    config = RunnerConfig(out_dir=tmp_path / "out", poll=POLL, settle=1.0, backoff=0.1)
    await _run(service, tmp_path / "j.sqlite", [str(p) for p in paths], config, clock=clock)
    uploaded = [m.source.rsplit("/", 1)[-1] for m in service.media.values()]
    assert uploaded == ["in-3.mov", "in-1.mov", "in-2.mov", "in-0.mov", "in-4.mov"]
