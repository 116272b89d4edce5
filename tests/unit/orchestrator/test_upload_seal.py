"""The upload seal (issue 14, item 4): several uploads in flight, exact after any lost answer or kill.

A staged input's fetch is held until its upload's answer is committed, so an unanswered upload's media
can only fail: the input goes up again under a new URL and the orphan is swept, with no help from the
service (no callbacks here). A service that fetches before it answers is detected by a held fetch timing
out, and uploads then go one at a time. On the virtual clock (`VirtualClock`), with a stager that runs
the fetch hook as the local file server does.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from orch_fakes import FakeMedia, FakeService, VirtualClock, write_reels

from orchestrator import ItemDone, Journal, Phase, RemoteStatus, Runner, RunnerConfig, StagedSource
from orchestrator._orphans import LOST_UPLOADS, judge_orphans
from orchestrator._polling import PollSettings
from orchestrator._seal import FetchTiming, UploadSeal
from orchestrator._staging import FetchHook

POLL = PollSettings(min_interval=1.0, max_interval=20.0)


class HookedStager:
    """Serves staged inputs through the fetch hook, like `LocalFileServer` (no sockets)."""

    def __init__(self) -> None:
        self.hook: FetchHook | None = None
        self.files: dict[str, Path] = {}
        self.served: list[str] = []
        self._held: set[anyio.CancelScope] = set()

    def set_fetch_hook(self, hook: FetchHook | None) -> None:
        self.hook = hook

    async def stage(self, path: Path, *, token: str | None = None) -> StagedSource:
        token = token or secrets.token_urlsafe(8)
        self.files[token] = path
        return StagedSource(source=f"http://stage.invalid/s/{token}/{path.name}", token=token)

    def fetches(self, token: str) -> int | None:
        return self.served.count(token)

    async def unstage(self, token: str) -> None:
        self.files.pop(token, None)

    async def fetch(self, url: str) -> bool:
        """The service's GET of a staged URL: True when the bytes were served."""
        token = url.split("/")[-2]
        if token not in self.files:
            return False
        with anyio.CancelScope() as scope:
            self._held.add(scope)
            try:
                allowed = self.hook is None or await self.hook(token)
            finally:
                self._held.discard(scope)
        if scope.cancelled_caught or not allowed or token not in self.files:
            return False
        self.served.append(token)
        return True

    def kill(self) -> None:
        """The process died: nothing is served any more, and held fetches break."""
        self.files.clear()
        self.hook = None
        for scope in self._held:
            scope.cancel()


class FetchingService(FakeService):
    """UploadMedia makes the media, then fetches the input from the stager (after answering, or before
    with `fetch_first`); media whose fetch was refused fails. Answers take `upload_time`."""

    def __init__(self, clock: VirtualClock, stager: HookedStager, *, fetch_first: bool) -> None:
        super().__init__(clock, media_time=30.0, job_time=20.0)
        self.stager = stager
        self.fetch_first = fetch_first
        self.upload_time = 2.0
        self.failed: set[str] = set()
        self.on_the_wire = 0
        self.most_on_the_wire = 0
        self.killed = False  # a killed client's requests are still processed: answers go nowhere
        self._tg: anyio.abc.TaskGroup | None = None

    async def serve(self, body: Callable[[], object]) -> object:
        async with self.clock.autoadvance(), anyio.create_task_group() as self._tg:
            result = await body()  # type: ignore[misc]
            self._tg.cancel_scope.cancel()
        return result

    async def upload(self, source_url: str, *, notify_url: str | None) -> str:
        self.on_the_wire += 1
        self.most_on_the_wire = max(self.most_on_the_wire, self.on_the_wire)
        try:
            created: BaseException | str
            try:
                created = await super().upload(source_url, notify_url=notify_url)
            except Exception as exc:  # (a lost answer, after the media was made)
                created = exc
            media = next((m for m in self.media.values() if m.source == source_url), None)
            if media is not None and not isinstance(created, str):
                media = self._newest(source_url)
            if isinstance(created, str):
                media = self.media[created]
            if media is not None:
                assert self._tg is not None
                if self.fetch_first:
                    await self._fetch(media)
                else:
                    self._tg.start_soon(self._fetch, media)
            await self.clock.sleep(self.upload_time)
            if isinstance(created, BaseException):
                raise created
            return created
        finally:
            self.on_the_wire -= 1

    def _newest(self, source_url: str) -> FakeMedia:
        return max(
            (m for m in self.media.values() if m.source == source_url), key=lambda m: m.uploaded_at
        )

    async def _fetch(self, media: FakeMedia) -> None:
        if not await self.stager.fetch(media.source):
            self.failed.add(media.file_id)

    def _status(self, media: FakeMedia) -> RemoteStatus:
        if media.file_id in self.failed:
            return RemoteStatus(Phase.FAILED, error_code="MediaUploadFailed")
        return super()._status(media)

    def _phase(self, media: FakeMedia) -> Phase:
        return Phase.FAILED if media.file_id in self.failed else super()._phase(media)


async def _run(
    service: FetchingService,
    clock: VirtualClock,
    tmp_path: Path,
    inputs: list[str],
    *,
    abort_when: Callable[[], bool] | None = None,
    fetch_hold: float = 5.0,
) -> list[object]:
    (tmp_path / "out").mkdir(exist_ok=True)
    config = RunnerConfig(
        out_dir=tmp_path / "out",
        poll=POLL,
        settle=1.0,
        backoff=0.1,
        max_uploads=4,
        fetch_hold=fetch_hold,
    )
    events: list[object] = []
    async with (
        Journal(tmp_path / "j.sqlite", service.job_spec(), wall=clock.monotonic) as journal,
        Runner(service, journal, config=config, clock=clock, stager=service.stager) as runner,
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
    return events


def _assert_each_output_is_its_own(events: list[object], n: int) -> None:
    done = [e for e in events if isinstance(e, ItemDone)]
    assert len(done) == n
    for event in done:
        restored = Path(event.output_path).read_bytes().decode()
        assert f"/{Path(event.key).name}" in restored, (event.key, restored)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    clock = VirtualClock()
    with clock.counting_threads(monkeypatch):
        yield clock


async def test_uploads_share_the_wire_once_the_service_answers_before_fetching(tmp_path, clock):
    """The first upload goes alone; once answered with its fetch held, four go at once."""
    service = FetchingService(clock, HookedStager(), fetch_first=False)
    inputs = write_reels(tmp_path, 12)
    events = await service.serve(lambda: _run(service, clock, tmp_path, inputs))
    _assert_each_output_is_its_own(events, 12)  # type: ignore[arg-type]
    assert service.most_on_the_wire == 4
    assert service.calls["upload"] == 12
    assert service.failed == set()


async def test_a_service_that_fetches_first_is_served_and_uploads_go_one_at_a_time(tmp_path, clock):
    """A held fetch that times out is served after all; from then on one upload at a time."""
    service = FetchingService(clock, HookedStager(), fetch_first=True)
    inputs = write_reels(tmp_path, 6)
    events = await service.serve(lambda: _run(service, clock, tmp_path, inputs, fetch_hold=3.0))
    _assert_each_output_is_its_own(events, 6)  # type: ignore[arg-type]
    assert service.most_on_the_wire == 1
    assert service.calls["upload"] == 6
    assert service.failed == set()


async def test_lost_answers_with_uploads_in_flight_go_up_again_and_orphans_are_swept(
    tmp_path, clock
):
    """Three answers lost while four uploads were on the wire: the three inputs go up again under new
    URLs, the three orphans (never served, so failed) are deleted, and nothing else is."""
    service = FetchingService(clock, HookedStager(), fetch_first=False)
    inputs = write_reels(tmp_path, 8)
    service.upload_unknown |= {"/reel01.mov", "/reel02.mov", "/reel03.mov"}
    events = await service.serve(lambda: _run(service, clock, tmp_path, inputs))
    _assert_each_output_is_its_own(events, 8)  # type: ignore[arg-type]
    assert service.most_on_the_wire == 4
    assert service.calls["upload"] == 11
    assert len(service.failed) == 3  # the orphans: never served
    assert service.live() == []
    assert all(m.starts <= 1 for m in service.media.values())
    async with Journal(tmp_path / "j.sqlite", service.job_spec()) as journal:
        assert await journal.get_meta(LOST_UPLOADS) == []


async def test_a_kill_with_four_uploads_open_resumes_exactly_without_callbacks(tmp_path, clock):
    """Killed with four uploads on the wire (media made, answers lost, fetches held): the rerun uploads
    those four again and deletes the four orphans; every output is its own input's, one job each."""
    service = FetchingService(clock, HookedStager(), fetch_first=False)
    service.upload_time = 10.0
    inputs = write_reels(tmp_path, 8)

    async def body() -> list[object]:
        await _run(
            service,
            clock,
            tmp_path,
            inputs,
            abort_when=lambda: service.on_the_wire == 4 and len(service.media) == 5,
        )
        assert len(service.stager.served) == 1  # the first upload, alone, was answered and served
        service.stager.kill()
        service.stager = HookedStager()  # a new process: nothing staged, the old URLs are dead
        return await _run(service, clock, tmp_path, inputs)

    events = await service.serve(body)
    _assert_each_output_is_its_own(events, 8)  # type: ignore[arg-type]
    assert service.calls["upload"] == 12
    assert len(service.failed) == 4
    assert service.live() == []
    assert all(m.starts <= 1 for m in service.media.values())


def test_orphans_are_judged_by_count_state_and_callbacks() -> None:
    failed = RemoteStatus(Phase.FAILED, error_code="MediaUploadFailed")
    ingesting = RemoteStatus(Phase.PROCESSING)
    ready = RemoteStatus(Phase.READY)
    # no more failed media than lost uploads: all of it is theirs; media that got further is not
    verdict = judge_orphans(["a", "b"], {"m1": failed, "m2": ready}, {})
    assert verdict.doomed == ("m1",)
    assert not verdict.undecided
    # more failed media than lost uploads: someone else's is among it, so none is deleted
    verdict = judge_orphans(["a"], {"m1": failed, "m2": failed}, {})
    assert verdict.doomed == ()
    assert "someone else" in verdict.reason
    # a callback to a lost upload's URL names its media exactly, whatever else is there
    verdict = judge_orphans(["a"], {"m1": failed, "m2": failed}, {"a": "m2"})
    assert verdict.doomed == ("m2",)
    # media still being ingested may yet fail: look again
    verdict = judge_orphans(["a", "b"], {"m1": failed, "m2": ingesting}, {})
    assert verdict.undecided
    assert verdict.doomed == ()


async def test_the_seal_holds_a_fetch_until_answered_and_refuses_after_a_lost_answer() -> None:
    seal = UploadSeal(hold=60.0)
    results: list[tuple[str, bool]] = []

    async def fetch(token: str) -> None:
        results.append((token, await seal.admit(token)))

    async with anyio.create_task_group() as tg:
        seal.expect("a")
        seal.expect("b")
        tg.start_soon(fetch, "a")
        tg.start_soon(fetch, "b")
        await anyio.wait_all_tasks_blocked()
        assert results == []  # both held
        seal.answered("a")
        assert seal.refuse("b")
    assert sorted(results) == [("a", True), ("b", False)]
    assert seal.timing is FetchTiming.AFTER_ANSWER
    assert await seal.admit("b") is False  # never served again
    assert await seal.admit("unknown") is True  # not an open upload: no hold


async def test_once_the_service_is_known_to_fetch_first_no_fetch_is_held_again() -> None:
    """Only the fetch that revealed the dialect waits `hold`; later uploads are served at once (each
    one otherwise waits the whole hold, since its answer needs the bytes)."""
    seal = UploadSeal(hold=0.05)
    seal.expect("first")
    assert await seal.admit("first") is True  # held `hold`, then served: the seal is broken
    assert seal.timing is FetchTiming.BEFORE_ANSWER
    seal.answered("first")
    seal.expect("second")
    served = None
    with anyio.CancelScope() as scope:
        scope.cancel()  # any wait inside admit() would end here, leaving `served` unset
        served = await seal.admit("second")
    assert served is True
    assert seal.broken("second")  # served while open: reconciliation must know
