"""The recuro_async client against the emulator over real loopback sockets: two readings of one document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest

from recuro_async import (
    Filter,
    MediaNotFoundError,
    OutputFormat,
    RateLimit,
    RecuroAPIError,
    RecuroClient,
    RecuroHTTPError,
    State,
)
from recuro_async.testing import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    EmulatorConfig,
    RunningEmulator,
    expected_restored_bytes,
    run_emulator,
    serve_asgi,
)
from recuro_async.webhooks import Notification, WebhookReceiver

TIME_SCALE = 0.01
POLL = 0.01


def mov(size: int, seed: int = 0) -> bytes:
    """A QuickTime file as far as a sniffer can tell: an `ftyp` box with the `qt  ` brand, then payload."""
    head = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  "
    body = bytes((i * 31 + seed) % 251 for i in range(size - len(head)))
    return head + body


class StaticFiles:
    """A tiny ASGI app that serves fixed bytes by path (the "customer's" media server)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = self.files.get(scope["path"])
        status = 200 if body is not None else 404
        body = body if body is not None else b"missing"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def served(app) -> AsyncIterator[str]:
    """Serve an ASGI app on loopback for the block; yields its origin."""
    async with anyio.create_task_group() as tg:
        origin = await tg.start(serve_asgi, app)
        try:
            yield origin
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def emulator(**overrides) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(time_scale=TIME_SCALE, **overrides)
    async with run_emulator(config) as running:
        yield running


def client_for(running: RunningEmulator, **kwargs) -> RecuroClient:
    kwargs.setdefault("rate_limit", RateLimit(200, 60.0 * TIME_SCALE))
    return RecuroClient(DEMO_API_KEY, DEMO_API_SECRET, base_url=running.base_url, **kwargs)


def max_in_window(times: list[float], window: float) -> int:
    """The most entries in any half-open window [t, t + window) of sorted times."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_whole_lifecycle_with_a_byte_exact_download(tmp_path):
    """Upload, analyse, restore, download (bytes equal the emulator's restoration) and delete."""
    original = mov(300_000)
    async with (
        served(StaticFiles({"/reel1.mov": original})) as media,
        emulator() as running,
        client_for(running) as recuro,
    ):
        assert {f.name for f in await recuro.list_filters()} >= {"Noise", "ColorBalance"}
        assert "Mp4H264" in {f.name for f in await recuro.list_output_formats()}
        file_id = await recuro.upload_media(f"{media}/reel1.mov")
        await recuro.wait_for(file_id, State.MEDIA_COMPLETED, poll_interval=POLL, timeout=30)
        await recuro.start_job(
            file_id,
            output_format=OutputFormat.MP4_H264,
            filters=[Filter.NOISE, Filter.COLOR_BALANCE],
            output_scaling="1080",
        )
        done = await recuro.wait_for(file_id, State.JOB_COMPLETED, poll_interval=POLL, timeout=30)
        assert done.restored_file_url is not None
        assert [m.file_id for m in await recuro.list_media()] == [file_id]
        path = await recuro.download(done.restored_file_url, tmp_path)
        expected = expected_restored_bytes(
            original,
            output_format="Mp4H264",
            filters=["Noise", "ColorBalance"],
            output_scaling="1080",
        )
        assert path.read_bytes() == expected
        assert path.parent == tmp_path
        await recuro.delete_media(file_id)
        assert await recuro.list_media() == []
        with pytest.raises(MediaNotFoundError):
            await recuro.get_progress(file_id)


async def test_error_paths_surface_the_servers_codes():
    """Job before analysis, unknown media, unsupported container and bad credentials raise with their codes."""
    files = {"/slow.mov": mov(2_000_000), "/notes.txt": b"just some text, not a video"}
    async with served(StaticFiles(files)) as media, emulator(media_seconds_per_mib=5.0) as running:
        async with client_for(running) as recuro:
            slow = await recuro.upload_media(f"{media}/slow.mov")
            with pytest.raises(RecuroAPIError) as info:
                await recuro.start_job(slow, output_format="Mp4H264", filters=["Noise"])
            assert info.value.error_code == "MediaNotReady"
            with pytest.raises(MediaNotFoundError):
                await recuro.get_progress("no-such-id")
            text = await recuro.upload_media(f"{media}/notes.txt")
            with pytest.raises(RecuroAPIError) as info:
                await recuro.wait_for(text, State.MEDIA_COMPLETED, poll_interval=POLL, timeout=30)
            assert info.value.error_code == "MediaFormatUnsupported"
            await recuro.delete_media("no-such-id")  # deleting what is gone is success
        async with RecuroClient(
            DEMO_API_KEY, "wrong-secret", base_url=running.base_url
        ) as intruder:
            with pytest.raises(RecuroAPIError) as info:
                await intruder.list_media()
            assert info.value.error_code == "AuthorizationInvalid"


@pytest.mark.parametrize("refusal", ["400", "429"])
async def test_burst_past_the_limit_is_absorbed(refusal):
    """A client allowed too much is refused by the emulator, pauses, and every call still succeeds."""
    async with emulator(refusal=refusal, rate_limit=40) as running:
        # The client believes it may send 100 per window; the emulator allows 40.
        async with (
            client_for(running, rate_limit=RateLimit(100, 60.0 * TIME_SCALE)) as recuro,
            anyio.create_task_group() as tg,
        ):
            for _ in range(120):
                tg.start_soon(recuro.list_media)
        statuses = [entry.status for entry in running.emulator.log]
        assert statuses.count(200) == 120
        assert any(s != 200 for s in statuses), (
            "the emulator never refused: the test proves nothing"
        )


async def test_default_limiter_never_exceeds_the_window():
    """With a matching limit, a burst of 4 windows' worth is never refused and no window holds more."""
    async with emulator(rate_limit=40) as running:
        async with (
            client_for(running, rate_limit=RateLimit(40, 60.0 * TIME_SCALE)) as recuro,
            anyio.create_task_group() as tg,
        ):
            for _ in range(160):
                tg.start_soon(recuro.list_media)
        log = running.emulator.log
        assert len(log) == 160
        assert all(entry.status == 200 for entry in log)
        assert max_in_window(sorted(e.time for e in log), 60.0 * TIME_SCALE) <= 40


async def test_callbacks_reach_a_webhook_receiver():
    """notify_url callbacks for media and job completion arrive at a WebhookReceiver."""
    send, receive = anyio.create_memory_object_stream[Notification](10)
    receiver = WebhookReceiver(send)
    async with (
        send,
        receive,
        served(StaticFiles({"/a.mov": mov(50_000)})) as media,
        served(receiver) as hooks,
        emulator() as running,
        client_for(running) as recuro,
    ):
        notify = receiver.notify_url(hooks)
        file_id = await recuro.upload_media(f"{media}/a.mov", notify_url=notify)
        with anyio.fail_after(30):
            media_done = await receive.receive()
        assert (media_done.file_id, media_done.error_code, media_done.succeeded) == (
            file_id,
            "MediaCompleted",
            True,
        )
        await recuro.start_job(
            file_id, output_format="MovProRes422Hq", filters=["Noise"], notify_url=notify
        )
        with anyio.fail_after(30):
            job_done = await receive.receive()
        assert job_done.succeeded
        assert job_done.is_job
        progress = await recuro.get_progress(file_id)
        assert job_done.restored_file_url == progress.restored_file_url


async def test_download_resumes_after_truncation_to_the_expected_bytes(tmp_path):
    """Downloads cut mid-body resume from the bytes on disk and end byte-identical."""
    original = mov(600_000, seed=3)
    async with (
        served(StaticFiles({"/b.mov": original})) as media,
        emulator(truncate_rate=0.6, seed=7) as running,
    ):
        async with client_for(running) as recuro:
            file_id = await recuro.upload_media(f"{media}/b.mov")
            await recuro.wait_for(file_id, State.MEDIA_COMPLETED, poll_interval=POLL, timeout=30)
            await recuro.start_job(
                file_id, output_format="Mp4Hevc", filters=["ReGrain"], output_scaling=2160
            )
            done = await recuro.wait_for(
                file_id, State.JOB_COMPLETED, poll_interval=POLL, timeout=30
            )
            assert done.restored_file_url is not None
            path = await recuro.download(done.restored_file_url, tmp_path / "out.mp4")
        truncations = [f for f in running.emulator.faults if f.kind == "truncate"]
    assert truncations, "no truncation was injected: the test proves nothing"
    assert path.read_bytes() == expected_restored_bytes(
        original, output_format="Mp4Hevc", filters=["ReGrain"], output_scaling="2160"
    )
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


async def test_download_without_credentials_is_refused(tmp_path):
    """The emulator's download endpoint needs the Authorization header the client adds per origin."""
    async with served(StaticFiles({"/c.mov": mov(40_000)})) as media, emulator() as running:
        async with client_for(running) as recuro:
            file_id = await recuro.upload_media(f"{media}/c.mov")
            await recuro.wait_for(file_id, State.MEDIA_COMPLETED, poll_interval=POLL, timeout=30)
            await recuro.start_job(file_id, output_format="Mp4H264", filters=[])
            done = await recuro.wait_for(
                file_id, State.JOB_COMPLETED, poll_interval=POLL, timeout=30
            )
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(done.restored_file_url)).status_code == 401


async def test_download_of_an_unknown_guid_is_an_http_error(tmp_path):
    """A restored-file URL the service does not know fails with its status and leaves nothing behind."""
    async with emulator() as running, client_for(running) as recuro:
        with pytest.raises(RecuroHTTPError) as info:
            await recuro.download(f"{running.download_base}?guid=00000000-dead-beef", tmp_path)
    assert info.value.status_code == 404
    assert list(tmp_path.iterdir()) == []
