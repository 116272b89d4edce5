"""Uploads attributed by their own callback URL (issue 14, item 4).

ListMedia names no source, so after a lost answer new media cannot be told apart; the callback the
service POSTs to each upload's own `notify_url` names the file_id. Overlapping uploads need the seal
(`test_upload_seal.py`); without it they go one at a time. On the virtual clock (`VirtualClock`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from orch_fakes import FakeService, VirtualClock, write_reels

from orchestrator import (
    ItemDone,
    Journal,
    Phase,
    RemoteStatus,
    Runner,
    RunnerConfig,
    StagedSource,
)
from orchestrator._attribution import CallbackHook
from orchestrator._polling import PollSettings

POLL = PollSettings(min_interval=1.0, max_interval=20.0)


class FakeStager:
    """Hands out unguessable URLs (the file name in the path), as the local file server does."""

    async def stage(self, path: Path, *, token: str | None = None) -> StagedSource:
        token = token or secrets.token_urlsafe(8)
        return StagedSource(source=f"http://stage.invalid/s/{token}/{path.name}", token=token)

    def fetches(self, token: str) -> int | None:
        return 0

    async def unstage(self, token: str) -> None:
        pass


class CallbackServer:
    """`UploadCallbacks` at one fixed address: a rerun listening there gets what the service sends."""

    def __init__(self) -> None:
        self._hook: CallbackHook | None = None

    def url_for(self, token: str) -> str:
        return f"http://stage.invalid/u/{token}"

    def set_hook(self, hook: CallbackHook | None) -> None:
        self._hook = hook

    def deliver(self, url: str, remote_id: str, status: RemoteStatus) -> bool:
        if self._hook is None:
            return False
        self._hook(url.rsplit("/", 1)[1], remote_id, status)
        return True


class SlowUploads(FakeService):
    """An UploadMedia creates its media on arrival and answers `upload_time` later; analysis ends with a
    POST to the upload's own notify_url (retried until someone listens there)."""

    def __init__(self, clock: VirtualClock, *, upload_time: float) -> None:
        super().__init__(clock, media_time=30.0, job_time=20.0)
        self.upload_time = upload_time
        self.server: CallbackServer | None = None
        self.notify_urls: dict[str, str | None] = {}
        self.on_the_wire = 0
        self.most_on_the_wire = 0

    async def upload(self, source_url: str, *, notify_url: str | None) -> str:
        self.on_the_wire += 1
        self.most_on_the_wire = max(self.most_on_the_wire, self.on_the_wire)
        try:
            before = set(self.media)
            created: BaseException | str
            try:
                created = await super().upload(source_url, notify_url=notify_url)
            except Exception as exc:  # (a lost answer, after the media was made)
                created = exc
            for file_id in set(self.media) - before:
                if self.media[file_id].source == source_url:
                    self.notify_urls[file_id] = notify_url
            await self.clock.sleep(self.upload_time)
            if isinstance(created, BaseException):
                raise created
            return created
        finally:
            self.on_the_wire -= 1

    async def call_back_forever(self) -> None:
        sent: set[str] = set()
        while True:
            for media in list(self.media.values()):
                url = self.notify_urls.get(media.file_id)
                if url is None or media.file_id in sent or media.deleted:
                    continue
                ended = self._phase(media) is not Phase.PROCESSING
                if ended and self.server is not None:
                    delivered = self.server.deliver(url, media.file_id, self._status(media))
                    if delivered:
                        sent.add(media.file_id)
            await self.clock.sleep(0.5)


async def _run(
    service: SlowUploads,
    clock: VirtualClock,
    tmp_path: Path,
    inputs: list[str],
    *,
    callbacks: bool,
    abort_when: Callable[[], bool] | None = None,
) -> list[object]:
    server = CallbackServer() if callbacks else None
    service.server = server
    (tmp_path / "out").mkdir(exist_ok=True)
    config = RunnerConfig(
        out_dir=tmp_path / "out", poll=POLL, settle=1.0, backoff=0.1, max_uploads=4
    )
    events: list[object] = []
    async with (
        Journal(tmp_path / "j.sqlite", service.job_spec(), wall=clock.monotonic) as journal,
        Runner(
            service,
            journal,
            config=config,
            clock=clock,
            stager=FakeStager(),
            callbacks=server,
        ) as runner,
        anyio.create_task_group() as tg,
    ):
        if abort_when is not None:

            async def watch() -> None:
                while not abort_when():
                    await clock.sleep(0.1)
                runner.abort()

            tg.start_soon(watch)
        events.extend([event async for event in runner.run(inputs)])
        tg.cancel_scope.cancel()
    service.server = None
    return events


def _assert_each_output_is_its_own(service: SlowUploads, events: list[object], n: int) -> None:
    done = [e for e in events if isinstance(e, ItemDone)]
    assert len(done) == n
    for event in done:
        restored = Path(event.output_path).read_bytes().decode()
        assert f"/{Path(event.key).name}" in restored, (
            event.key,
            restored,
        )  # its own original's job


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    clock = VirtualClock()
    with clock.counting_threads(monkeypatch):
        yield clock


async def _with_callbacks_forever(service: SlowUploads, clock: VirtualClock, body):
    async with clock.autoadvance(), anyio.create_task_group() as tg:
        tg.start_soon(service.call_back_forever)
        result = await body()
        tg.cancel_scope.cancel()
    return result


@pytest.mark.parametrize("callbacks", [True, False])
async def test_without_the_seal_uploads_go_one_at_a_time_even_with_callbacks(
    tmp_path, clock, callbacks
):
    """A stager that cannot hold fetches (no fetch hook): callbacks alone do not make overlapping
    uploads safe after a kill (the service need not call a rerun back), so one goes at a time."""
    service = SlowUploads(clock, upload_time=2.0)
    inputs = write_reels(tmp_path, 12)

    async def body():
        return await _run(service, clock, tmp_path, inputs, callbacks=callbacks)

    events = await _with_callbacks_forever(service, clock, body)
    _assert_each_output_is_its_own(service, events, 12)
    assert service.most_on_the_wire == 1
    assert service.calls["upload"] == 12


async def test_lost_answers_of_uploads_in_flight_together_are_attributed(tmp_path, clock):
    """Three answers lost (one upload at a time): each item adopts its own media from its callback."""
    service = SlowUploads(clock, upload_time=2.0)
    inputs = write_reels(tmp_path, 8)
    service.upload_unknown |= {"/reel01.mov", "/reel02.mov", "/reel03.mov"}

    async def body():
        return await _run(service, clock, tmp_path, inputs, callbacks=True)

    events = await _with_callbacks_forever(service, clock, body)
    _assert_each_output_is_its_own(service, events, 8)
    assert service.calls["upload"] == 8  # adopted, not sent again
    assert service.live() == []
    async with Journal(tmp_path / "j.sqlite", service.job_spec()) as journal:
        outcomes = [i.outcome for i in await journal.intents() if i.kind == "upload"]
    assert outcomes.count("adopted") == 3
