"""Test doubles for the orchestrator: a fake clock and an in-memory service behind the ServiceAdapter API."""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs
import fakeclock
import pytest

from orchestrator._service import (
    ItemError,
    JobSpec,
    NotReadyError,
    OutcomeUnknownError,
    Phase,
    RemoteMedia,
    RemoteStatus,
)


class FakeClock:
    """A clock whose sleeps return at once and move time forward by the amount slept."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await anyio.lowlevel.checkpoint()

    def advance(self, seconds: float) -> None:
        self.now += seconds


class VirtualClock(fakeclock.FakeClock):
    """`fakeclock.FakeClock` for the whole engine: time moves only when every task waits on the clock.

    The engine hops to worker threads (the journal's SQLite, file I/O); a task waiting on a thread is not
    idle, so inside `autoadvance()` time stands still until no thread work is in flight. Use
    `counting_threads(monkeypatch)` to let the clock see thread hops.
    """

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__(start)
        self._threads = 0
        self._idle: anyio.Event | None = None

    @contextlib.contextmanager
    def counting_threads(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        original = anyio.to_thread.run_sync

        async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self._threads += 1
            try:
                return await original(func, *args, **kwargs)
            finally:
                self._threads -= 1
                if self._threads == 0 and self._idle is not None:
                    self._idle.set()

        with monkeypatch.context() as patch:
            patch.setattr(anyio.to_thread, "run_sync", counted)
            yield

    async def _drive(self) -> None:
        while True:
            await self.settle()
            if self._threads:
                self._idle = anyio.Event()
                await self._idle.wait()
                self._idle = None
                continue
            deadline = self.next_deadline()
            if deadline is None or deadline == math.inf:
                self._sleeper_added = anyio.Event()
                await self._sleeper_added.wait()
                self._sleeper_added = None
            else:
                self._wake_first()


@attrs.define
class FakeMedia:
    file_id: str
    source: str
    uploaded_at: float
    started_at: float | None = None
    starts: int = 0
    deleted: bool = False


class FakeService:
    """An in-memory service: media take `media_time` to ingest and jobs `job_time` to run (fake clock).

    Knobs for faults: `fail_jobs` (source substrings whose job fails), `upload_unknown` (source substrings
    whose first UploadMedia creates the media but answers as if the connection dropped), `upload_lost`
    (same, but the request never arrived), `start_unknown` (the first StartJob starts the job and answers
    unknown), `notify` (a callback for webhook mode).
    """

    name = "fake"
    start_when_predicted = False
    sweep_phases = frozenset({Phase.RUNNING})

    def __init__(
        self,
        clock: FakeClock | fakeclock.FakeClock,
        *,
        media_time: float | Callable[[str], float] = 5.0,
        job_time: float = 20.0,
        settings: dict[str, object] | None = None,
    ) -> None:
        self.clock = clock
        self.media_time = media_time
        self.job_time = job_time
        self.settings = settings or {"format": "Mp4H264"}
        self.media: dict[str, FakeMedia] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.status_phases: collections.Counter[Phase] = collections.Counter()
        self.fail_jobs: set[str] = set()
        self.upload_unknown: set[str] = set()
        self.upload_lost: set[str] = set()
        self.start_unknown: set[str] = set()
        self.foreign_upload_on_unknown = False
        self.notify: object = None
        self.downloads: list[str] = []
        self._ids = itertools.count(1)

    # the adapter protocol -------------------------------------------------------

    def job_spec(self) -> JobSpec:
        return JobSpec("fake", dict(self.settings))

    def output_name(self, input_name: str) -> str:
        return Path(input_name).stem + ".mp4"

    async def upload(self, source_url: str, *, notify_url: str | None) -> str:
        await anyio.lowlevel.checkpoint()
        self.calls["upload"] += 1
        if any(s in source_url for s in self.upload_lost):
            self.upload_lost -= {s for s in self.upload_lost if s in source_url}
            raise OutcomeUnknownError("connection dropped before the request was read")
        file_id = f"id-{next(self._ids)}"
        self.media[file_id] = FakeMedia(file_id, source_url, self.clock.monotonic())
        if self.foreign_upload_on_unknown and any(s in source_url for s in self.upload_unknown):
            other = f"id-{next(self._ids)}"
            self.media[other] = FakeMedia(other, "someone-else", self.clock.monotonic())
        if any(s in source_url for s in self.upload_unknown):
            self.upload_unknown -= {s for s in self.upload_unknown if s in source_url}
            raise OutcomeUnknownError("connection dropped after the request was sent")
        return file_id

    async def start(self, remote_id: str, *, notify_url: str | None) -> None:
        await anyio.lowlevel.checkpoint()
        self.calls["start"] += 1
        media = self._get(remote_id)
        if self._phase(media) is Phase.PROCESSING and self.start_when_predicted:
            raise NotReadyError("MediaNotReady")
        if self._phase(media) is not Phase.READY:
            raise ItemError("JobAlreadyStarted" if media.starts else "MediaNotReady", "refused")
        media.started_at = self.clock.monotonic()
        media.starts += 1
        if any(s in media.source for s in self.start_unknown):
            self.start_unknown -= {s for s in self.start_unknown if s in media.source}
            raise OutcomeUnknownError("read timeout")

    async def status(self, remote_id: str) -> RemoteStatus:
        await anyio.lowlevel.checkpoint()
        self.calls["status"] += 1
        media = self.media.get(remote_id)
        if media is None or media.deleted:
            return RemoteStatus(Phase.GONE, error_code="MediaNotFound")
        status = self._status(media)
        self.status_phases[status.phase] += 1
        return status

    async def sweep(self) -> list[RemoteMedia]:
        await anyio.lowlevel.checkpoint()
        self.calls["sweep"] += 1
        return [
            RemoteMedia(m.file_id, self._url(m) if self._phase(m) is Phase.RESTORED else None)
            for m in self.media.values()
            if not m.deleted
        ]

    async def download(self, url: str, dest: Path, *, progress: object) -> Path:
        await anyio.lowlevel.checkpoint()
        self.downloads.append(url)
        data = self.content(url.removeprefix("fake://result/"))
        part = dest.with_name(dest.name + ".part")
        await anyio.Path(part).write_bytes(data)
        await anyio.Path(part).rename(dest)
        if callable(progress):
            progress(len(data), len(data))
        return dest

    async def delete(self, remote_id: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.calls["delete"] += 1
        media = self.media.get(remote_id)
        if media is not None:
            media.deleted = True

    # helpers for tests ------------------------------------------------------------

    def content(self, file_id: str) -> bytes:
        return f"restored:{self.media[file_id].source}".encode()

    def media_for(self, source: str) -> FakeMedia:
        (media,) = [m for m in self.media.values() if m.source == source]
        return media

    async def callbacks_forever(self) -> None:
        """Webhook mode: POST each media's completion and each job's end once, as they happen."""
        sent: set[tuple[str, Phase]] = set()
        while True:
            for media in list(self.media.values()):
                phase = self._phase(media)
                if media.deleted or phase in (Phase.PROCESSING, Phase.RUNNING):
                    continue
                if (media.file_id, phase) not in sent and callable(self.notify):
                    sent.add((media.file_id, phase))
                    await self.notify(media.file_id, self._status(media))
            await self.clock.sleep(0.5)

    def live(self) -> list[FakeMedia]:
        return [m for m in self.media.values() if not m.deleted]

    def requests(self) -> int:
        return sum(self.calls.values())

    def _get(self, remote_id: str) -> FakeMedia:
        media = self.media.get(remote_id)
        if media is None or media.deleted:
            raise ItemError("MediaNotFound", remote_id)
        return media

    def _media_time(self, media: FakeMedia) -> float:
        return self.media_time(media.source) if callable(self.media_time) else self.media_time

    def _url(self, media: FakeMedia) -> str:
        return f"fake://result/{media.file_id}"

    def _failing(self, media: FakeMedia) -> bool:
        return any(s in media.source for s in self.fail_jobs)

    def _phase(self, media: FakeMedia) -> Phase:
        now = self.clock.monotonic()
        if media.started_at is None:
            return (
                Phase.READY
                if now >= media.uploaded_at + self._media_time(media)
                else Phase.PROCESSING
            )
        if now >= media.started_at + self.job_time:
            return Phase.FAILED if self._failing(media) else Phase.RESTORED
        return Phase.RUNNING

    def _status(self, media: FakeMedia) -> RemoteStatus:
        phase = self._phase(media)
        now = self.clock.monotonic()
        if phase is Phase.PROCESSING:
            fraction = (now - media.uploaded_at) / self._media_time(media)
            return RemoteStatus(
                phase, fraction=fraction, state="Analysing", progress=fraction * 100
            )
        if phase is Phase.RUNNING:
            assert media.started_at is not None
            fraction = (now - media.started_at) / self.job_time
            return RemoteStatus(phase, fraction=fraction, state="Running", progress=fraction * 100)
        if phase is Phase.FAILED:
            return RemoteStatus(phase, error_code="JobFailed", error_message="the job failed")
        if phase is Phase.RESTORED:
            return RemoteStatus(phase, state="Completed", progress=100, result_url=self._url(media))
        return RemoteStatus(phase, state="MediaCompleted", progress=100)


def write_reels(tmp_path: Path, n: int) -> list[str]:
    """`n` small local inputs `in/reel00.mov`... whose bytes name them (each output shows its input)."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"reel{i:02d}.mov"
        path.write_bytes(b"original %d" % i)
        paths.append(str(path))
    return paths
