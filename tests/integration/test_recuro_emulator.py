"""The Recuro emulator over real loopback sockets, driven with plain httpx (not our client)."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from recuro_async.testing import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    FILTERS,
    OUTPUT_FORMATS,
    STATES,
    EmulatorConfig,
    RecuroEmulator,
    RunningEmulator,
    expected_restored_bytes,
    run_emulator,
    serve_asgi,
)

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"{DEMO_API_KEY}:{DEMO_API_SECRET}"}
# Fast clock, and a limit high enough that polling never trips it (the rate-limit tests set their own).
FAST: dict[str, Any] = {"time_scale": 0.02, "rate_limit": 100_000}


def mov_bytes(size: int = 50_000) -> bytes:
    """A QuickTime-looking sample: an ftyp box with the 'qt  ' brand, then patterned bytes."""
    head = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  "
    body = bytes((i * 7 + i // 256) % 256 for i in range(size - len(head)))
    return head + body


class FileServer:
    """A tiny ASGI file server with optional basic auth; it records each request's path."""

    def __init__(self, files: dict[str, bytes], auth: tuple[str, str] | None = None) -> None:
        self.files = files
        self.auth = auth
        self.requests: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        self.requests.append(scope["path"])
        headers = dict(scope["headers"])
        status, body = 200, self.files.get(scope["path"])
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode())
            if headers.get(b"authorization") != b"Basic " + token:
                status, body = 401, b"unauthorized"
        if body is None:
            status, body = 404, b"not found"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Receiver:
    """A notify_url receiver that answers `failures` 503s first, then 200, and keeps the bodies."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.calls = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        self.calls += 1
        status = 503 if self.calls <= self.failures else 200
        if status == 200:
            self.bodies.append(json.loads(b"".join(chunks)))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@attrs.frozen
class Env:
    """An emulator on loopback, a file server and a receiver beside it, and an httpx client."""

    running: RunningEmulator
    files: FileServer
    file_origin: str
    receiver: Receiver
    receiver_url: str
    client: httpx.AsyncClient

    @property
    def emu(self) -> RecuroEmulator:
        return self.running.emulator

    @property
    def base(self) -> str:
        return self.running.base_url

    async def api(self, action: str, **params: Any) -> httpx.Response:
        return await self.client.post(self.base, json={"action": action, **params})

    async def upload(self, name: str = "/reel1.mov", **params: Any) -> str:
        response = await self.api(
            "UploadMedia", original_file_url=self.file_origin + name, **params
        )
        assert response.status_code == 200, response.text
        return response.json()["file_id"]

    async def wait_state(
        self, file_id: str, wanted: str, *, limit: float = 15.0, interval: float = 0.005
    ) -> list[tuple[str, Any]]:
        """Poll GetProgress until `wanted` (or an error_code) shows; return every answer seen."""
        seen: list[tuple[str, Any]] = []
        with anyio.fail_after(limit):
            while True:
                response = await self.api("GetProgress", file_id=file_id)
                body = response.json()
                if response.status_code != 200:
                    seen.append((body["error_code"], None))
                    return seen
                seen.append((body["state"], body["progress"]))
                if body["state"] == wanted:
                    return seen
                await anyio.sleep(interval)


@contextlib.asynccontextmanager
async def loopback(
    config: EmulatorConfig | None = None,
    *,
    files: dict[str, bytes] | None = None,
    file_auth: tuple[str, str] | None = None,
    receiver: Receiver | None = None,
) -> AsyncIterator[Env]:
    """Run an emulator, a file server and a callback receiver on loopback for one test."""
    server = FileServer(files if files is not None else {"/reel1.mov": mov_bytes()}, file_auth)
    receiver = receiver if receiver is not None else Receiver()
    async with (
        run_emulator(config or EmulatorConfig(**FAST)) as running,
        anyio.create_task_group() as tg,
        httpx.AsyncClient(headers=AUTH, trust_env=False, timeout=10) as client,
    ):
        file_origin = await tg.start(functools.partial(serve_asgi, server))
        receiver_origin = await tg.start(functools.partial(serve_asgi, receiver))
        yield Env(running, server, file_origin, receiver, receiver_origin + "/hook/t0k3n", client)
        tg.cancel_scope.cancel()


def _in_order(states: list[str]) -> bool:
    ranks = [STATES.index(s) for s in states]
    return ranks == sorted(ranks)


# ---------------------------------------------------------------- lifecycle


async def test_whole_lifecycle_over_loopback():
    """Upload, analysis, a Colorize job, download, ListMedia and DeleteMedia behave as the document says."""
    config = EmulatorConfig(time_scale=0.02, rate_limit=100_000, job_base_seconds=30.0)
    original = mov_bytes()
    async with loopback(config, files={"/reels/reel1.mov": original}) as env:
        file_id = await env.upload("/reels/reel1.mov")
        assert file_id.endswith(".mov")
        media = await env.wait_state(file_id, "MediaCompleted")
        assert env.files.requests == ["/reels/reel1.mov"]
        response = await env.api(
            "StartJob",
            file_id=file_id,
            output_format="Mp4H264",
            filters=["Colorize", "Noise"],
            output_scaling="1080",
        )
        assert (response.status_code, response.content) == (200, b"")
        job = await env.wait_state(file_id, "JobCompleted")

        states = [s for s, _ in media + job]
        assert _in_order(states)
        assert states[-1] == "JobCompleted"
        assert {"JobColorizing", "JobRunning"} <= set(states)
        assert all(0 <= float(p) <= 100 for _, p in media + job)
        for (s1, p1), (s2, p2) in zip(media + job, (media + job)[1:], strict=False):
            assert s1 != s2 or float(p1) <= float(p2)

        final = (await env.api("GetProgress", file_id=file_id)).json()
        assert final["progress"] == 100
        url = final["restored_file_url"]
        assert url.startswith(env.running.download_base + "?guid=")
        download = await env.client.get(url)
        assert download.status_code == 200
        assert download.content == expected_restored_bytes(
            original, output_format="Mp4H264", filters=["Noise", "Colorize"], output_scaling="1080"
        )
        assert download.headers["content-disposition"] == 'attachment; filename="reel1.mp4"'

        listing = (await env.api("ListMedia")).json()
        assert listing == [{"file_id": file_id, "restored_file_url": url}]

        deleted = await env.api("DeleteMedia", file_id=file_id)
        assert (deleted.status_code, deleted.content) == (200, b"")
        gone = await env.api("GetProgress", file_id=file_id)
        assert (gone.status_code, gone.json()["error_code"]) == (400, "MediaNotFound")
        assert (await env.api("ListMedia")).json() == []
        assert (await env.client.get(url)).status_code == 404
        assert env.emu.media_ids() == []


async def test_job_without_colorize_skips_the_colorization_states():
    """A job without Colorize never reports JobQueuedColorization or JobColorizing."""
    async with loopback() as env:
        file_id = await env.upload()
        await env.wait_state(file_id, "MediaCompleted")
        await env.api("StartJob", file_id=file_id, output_format="MovProRes422Hq", filters=[])
        states = {s for s, _ in await env.wait_state(file_id, "JobCompleted")}
        assert not states & {"JobQueuedColorization", "JobColorizing"}


async def test_names_and_keys_match_in_any_case():
    """Action names, request keys, formats, filters and scaling are accepted in any case."""
    async with loopback() as env:
        response = await env.client.post(
            env.base,
            json={"ACTION": "uploadmedia", "Original_File_URL": env.file_origin + "/reel1.mov"},
        )
        file_id = response.json()["file_id"]
        await env.wait_state(file_id, "MediaCompleted")
        response = await env.client.post(
            env.base,
            json={
                "Action": "STARTJOB",
                "FILE_ID": file_id,
                "output_FORMAT": "mp4hevc",
                "Filters": ["colorbalance", "NOISE"],
                "Output_Scaling": 2160,
            },
        )
        assert response.status_code == 200, response.text


async def test_lists_of_filters_and_formats_follow_the_document():
    """ListFilters names the 22 filters with a description and link; ListOutputFormats the 6 formats."""
    async with loopback() as env:
        filters = (await env.api("ListFilters")).json()
        formats = (await env.api("ListOutputFormats")).json()
    assert [f["name"] for f in filters] == list(FILTERS)
    assert len(filters) == 22
    assert {"AdaptiveSharpness", "NaturalSpeed"} <= {f["name"] for f in filters}
    assert all(set(f) == {"name", "description", "example_url"} for f in filters)
    assert [f["name"] for f in formats] == [f.name for f in OUTPUT_FORMATS]
    assert {"name": "Mp4H264", "long_name": "MP4 (H.264)"} in formats


async def test_upload_fetches_with_basic_auth():
    """UploadMedia sends username and password as basic auth when fetching the original."""
    async with loopback(file_auth=("alice", "s3cret")) as env:
        good = await env.upload(username="alice", password="s3cret")
        bad = await env.upload(username="alice", password="wrong")
        assert (await env.wait_state(good, "MediaCompleted"))[-1][0] == "MediaCompleted"
        failed = await env.wait_state(bad, "MediaCompleted")
        assert failed[-1] == ("MediaUploadFailed", None)


@pytest.mark.parametrize(
    ("name", "content", "outcome"),
    [
        ("/a.mkv", bytes.fromhex("1A45DFA3") + b"\x00" * 100, "MediaCompleted"),
        ("/noext", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100, "MediaCompleted"),
        ("/a.wav", b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 100, "MediaCompleted"),
        ("/a.bin", b"ID3\x04" + b"\x00" * 100, "MediaCompleted"),
        ("/a.bin", bytes.fromhex("000001BA") + b"\x00" * 100, "MediaCompleted"),
        ("/a.bin", bytes.fromhex("060E2B34") + b"\x00" * 100, "MediaCompleted"),
        ("/raw.mxf", b"no magic at all" * 10, "MediaCompleted"),
        ("/a.mov", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "MediaFormatUnsupported"),
        ("/notes.txt", b"just some text" * 10, "MediaFormatUnsupported"),
    ],
    ids=["mkv", "mp4-no-ext", "wav", "mp3-id3", "mpg", "mxf", "mxf-by-ext", "png-as-mov", "txt"],
)
async def test_only_the_documented_containers_are_accepted(name, content, outcome):
    """Magic numbers decide the container where present, the extension otherwise; others fail."""
    async with loopback(files={name: content}) as env:
        file_id = await env.upload(name)
        assert (await env.wait_state(file_id, "MediaCompleted"))[-1][0] == outcome


async def test_unreachable_original_fails_the_media():
    """A 404 or a refused connection for original_file_url ends in MediaUploadFailed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/x.mov"
        async with loopback() as env:
            missing = await env.upload("/missing.mov")
            refused = (await env.api("UploadMedia", original_file_url=dead)).json()["file_id"]
            for file_id in (missing, refused):
                seen = await env.wait_state(file_id, "MediaCompleted")
                assert seen[-1] == ("MediaUploadFailed", None)


# ---------------------------------------------------------------- StartJob rules and queueing


async def test_start_job_is_refused_before_media_completed():
    """StartJob while the media is still being analysed answers MediaNotReady."""
    config = EmulatorConfig(time_scale=1.0, media_base_seconds=600)
    async with loopback(config) as env:
        file_id = await env.upload()
        response = await env.api("StartJob", file_id=file_id, output_format="Mp4H264", filters=[])
        assert response.status_code == 400
        assert response.json()["error_code"] == "MediaNotReady"


async def test_second_job_is_refused_and_a_failed_job_may_restart():
    """A second StartJob answers JobAlreadyStarted; after JobFailed a new StartJob is accepted."""
    async with loopback(EmulatorConfig(**FAST, job_failure_rate=1.0)) as env:
        file_id = await env.upload()
        await env.wait_state(file_id, "MediaCompleted")
        job = {"file_id": file_id, "output_format": "Mp4H264", "filters": ["Noise"]}
        assert (await env.api("StartJob", **job)).status_code == 200
        again = await env.api("StartJob", **job)
        assert (again.status_code, again.json()["error_code"]) == (400, "JobAlreadyStarted")
        failed = await env.wait_state(file_id, "JobCompleted")
        assert failed[-1] == ("JobFailed", None)
        assert (await env.api("StartJob", **job)).status_code == 200


async def test_jobs_queue_behind_the_concurrency_bound():
    """With one job slot, a second job waits in JobQueued while the first runs, then completes."""
    config = EmulatorConfig(**FAST, max_concurrent_jobs=1, job_base_seconds=40.0)
    async with loopback(config, files={"/a.mov": mov_bytes(), "/b.mov": mov_bytes()}) as env:
        first, second = await env.upload("/a.mov"), await env.upload("/b.mov")
        await env.wait_state(first, "MediaCompleted")
        await env.wait_state(second, "MediaCompleted")
        for file_id in (first, second):
            await env.api("StartJob", file_id=file_id, output_format="Mp4H264", filters=[])
        progress = (await env.api("GetProgress", file_id=second)).json()
        assert progress["state"] == "JobQueued"
        seen = await env.wait_state(second, "JobCompleted")
        assert env.emu.state_of(first) == "JobCompleted"
        assert seen[-1][0] == "JobCompleted"


async def test_durations_grow_with_media_size():
    """A larger original takes longer to analyse than a small one."""
    config = EmulatorConfig(
        time_scale=0.01, rate_limit=100_000, media_base_seconds=1, media_seconds_per_mib=200
    )
    files = {"/small.mov": mov_bytes(1_000), "/large.mov": mov_bytes(2_000_000)}
    async with loopback(config, files=files) as env:
        small, large = await env.upload("/small.mov"), await env.upload("/large.mov")
        await env.wait_state(small, "MediaCompleted")
        state = env.emu.state_of(large)
        # (under load the large original may still be fetched: not done either way)
        assert state in {
            "MediaUploading",
            "MediaQueued",
            "MediaInformation",
            "MediaScenes",
            "MediaAnalyze",
        }


async def test_accounts_are_isolated():
    """Each API key sees only its own media and has its own rate window."""
    other = {"Authorization": "second-key:second-secret"}
    config = EmulatorConfig(
        **FAST, credentials={DEMO_API_KEY: DEMO_API_SECRET, "second-key": "second-secret"}
    )
    async with loopback(config) as env:
        file_id = await env.upload()
        theirs = await env.client.post(
            env.base, json={"action": "GetProgress", "file_id": file_id}, headers=other
        )
        assert theirs.json()["error_code"] == "MediaNotFound"
        listing = await env.client.post(env.base, json={"action": "ListMedia"}, headers=other)
        assert listing.json() == []


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "ActionMissing"),
        ({"action": 7}, "ActionInvalid"),
        ({"action": "Explode"}, "ActionInvalid"),
        ({"action": "GetProgress"}, "FileIdMissing"),
        ({"action": "GetProgress", "file_id": ""}, "FileIdMissing"),
        ({"action": "GetProgress", "file_id": 12}, "FileIdInvalid"),
        ({"action": "GetProgress", "file_id": "ids-1.mov"}, "MediaNotFound"),
        ({"action": "DeleteMedia", "file_id": "ids-1.mov"}, "MediaNotFound"),
        ({"action": "DeleteMedia"}, "FileIdMissing"),
        ({"action": "UploadMedia"}, "OriginalFileUrlMissing"),
        ({"action": "UploadMedia", "original_file_url": 3}, "OriginalFileUrlInvalid"),
        ({"action": "UploadMedia", "original_file_url": "ftp://x/y.mov"}, "OriginalFileUrlInvalid"),
        (
            {"action": "UploadMedia", "original_file_url": "http://h/a.mov", "notify_url": "nope"},
            "NotifyUrlInvalid",
        ),
        (
            {"action": "UploadMedia", "original_file_url": "http://h/a.mov", "username": ["x"]},
            "UsernameInvalid",
        ),
        (
            {"action": "UploadMedia", "original_file_url": "http://h/a.mov", "password": 1},
            "PasswordInvalid",
        ),
        ({"action": "StartJob", "filters": []}, "FileIdMissing"),
        ({"action": "StartJob", "file_id": "f", "filters": []}, "OutputFormatMissing"),
        (
            {"action": "StartJob", "file_id": "f", "output_format": "Avi", "filters": []},
            "OutputFormatInvalid",
        ),
        ({"action": "StartJob", "file_id": "f", "output_format": "Mp4H264"}, "FiltersMissing"),
        (
            {"action": "StartJob", "file_id": "f", "output_format": "Mp4H264", "filters": "Noise"},
            "FiltersInvalid",
        ),
        (
            {"action": "StartJob", "file_id": "f", "output_format": "Mp4H264", "filters": ["Blur"]},
            "FiltersInvalid",
        ),
        (
            {
                "action": "StartJob",
                "file_id": "f",
                "output_format": "Mp4H264",
                "filters": [],
                "output_scaling": "720",
            },
            "OutputScalingInvalid",
        ),
        (
            {"action": "StartJob", "file_id": "f", "output_format": "Mp4H264", "filters": []},
            "MediaNotFound",
        ),
    ],
)
async def test_every_error_path_answers_an_error_body(body, code):
    """Each malformed or impossible request gets HTTP 400 and exactly {error_code, error_message}."""
    async with loopback() as env:
        response = await env.client.post(env.base, json=body)
        assert response.status_code == 400
        assert set(response.json()) == {"error_code", "error_message"}
        assert response.json()["error_code"] == code
        assert (await env.api("ListFilters")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "AuthorizationMissing"),
        ({"Authorization": f"{DEMO_API_KEY}:wrong"}, "AuthorizationInvalid"),
        ({"Authorization": "no-colon-here"}, "AuthorizationInvalid"),
        ({"Authorization": f"nobody:{DEMO_API_SECRET}"}, "AuthorizationInvalid"),
    ],
)
async def test_wrong_or_missing_credentials_are_refused(headers, code):
    """A request without a valid `Authorization: KEY:SECRET` header gets an error body."""
    async with (
        run_emulator(EmulatorConfig(**FAST)) as running,
        httpx.AsyncClient(trust_env=False) as client,
    ):
        response = await client.post(
            running.base_url, json={"action": "ListMedia"}, headers=headers
        )
    assert response.status_code == 400
    assert response.json()["error_code"] == code


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "RequestInvalid"),
        (b"[1, 2, 3]", "RequestInvalid"),
        (b"\xff\xfe\x00garbage", "RequestInvalid"),
        (b"", "RequestInvalid"),
        (b'{"action": "ListMedia", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}', "RequestTooLarge"),
    ],
    ids=["malformed", "array", "not-utf8", "empty", "2MiB"],
)
async def test_bad_bodies_get_error_bodies_and_the_emulator_stays_up(content, code):
    """Malformed JSON, non-objects, bad UTF-8, empty and oversized bodies get error bodies, then all is well."""
    async with loopback() as env:
        response = await env.client.post(
            env.base, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error_code"] == code
        assert (await env.api("ListMedia")).status_code == 200


async def test_garbage_on_the_socket_does_not_take_the_emulator_down():
    """A connection speaking nonsense, or closing mid-request, leaves the emulator serving."""
    async with loopback() as env:
        host, port = env.base.split("//")[1].split("/")[0].split(":")
        for junk in (
            b"NOT HTTP AT ALL\r\n\r\n",
            b"POST /api/1.0/ HTTP/1.1\r\nContent-Length: 50\r\n\r\n{",
        ):
            async with await anyio.connect_tcp(host, int(port)) as stream:
                await stream.send(junk)
        assert (await env.api("ListMedia")).status_code == 200


async def test_web_server_answers_outside_the_api():
    """Unknown paths get 404 and other methods 405, as from a web server (no API error body)."""
    async with loopback() as env:
        assert (await env.client.get(env.running.origin + "/nothing")).status_code == 404
        assert (await env.client.get(env.base)).status_code == 405
        assert (await env.client.post(env.running.download_base)).status_code == 405


async def test_delete_of_an_unknown_id_can_be_lenient():
    """With strict_delete=False, DeleteMedia of an unknown id answers 200 with an empty body."""
    async with loopback(EmulatorConfig(**FAST, strict_delete=False)) as env:
        response = await env.api("DeleteMedia", file_id="ids-404.mov")
        assert (response.status_code, response.content) == (200, b"")


# ---------------------------------------------------------------- rate limit


@pytest.mark.parametrize("refusal", ["400", "429"])
async def test_the_201st_request_in_a_window_is_refused(refusal):
    """200 requests pass; the 201st in the same window is refused in the configured form."""
    async with loopback(EmulatorConfig(refusal=refusal)) as env:
        for _ in range(200):
            assert (await env.api("ListFilters")).status_code == 200
        refused = await env.api("ListFilters")
        assert refused.json()["error_code"] == "RateLimitExceeded"
        if refusal == "429":
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 60
        else:
            assert refused.status_code == 400
        assert env.emu.peak_window_count() == 201
        assert [e.status for e in env.emu.log][-1] == int(refusal)


async def test_the_window_slides_with_time_scale():
    """After a refusal, requests pass again once the (time-scaled) window has moved on."""
    async with loopback(EmulatorConfig(time_scale=0.005, rate_limit=5)) as env:
        statuses = [(await env.api("ListFilters")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [400]
        await anyio.sleep(env.emu.config.rate_window)
        assert (await env.api("ListFilters")).status_code == 200


async def test_downloads_are_not_counted_against_the_rate_limit():
    """Downloads of restored files do not use the API budget."""
    async with loopback(EmulatorConfig(time_scale=0.01, rate_limit=1_000)) as env:
        file_id = await env.upload()
        await env.wait_state(file_id, "MediaCompleted", interval=0.02)
        await env.api("StartJob", file_id=file_id, output_format="Mp4H264", filters=[])
        url = (await env.wait_state(file_id, "JobCompleted", interval=0.02))[-1]
        url = (await env.api("GetProgress", file_id=file_id)).json()["restored_file_url"]
        before = env.emu.ratelimit.in_window(DEMO_API_KEY, anyio.current_time())
        for _ in range(5):
            assert (await env.client.get(url)).status_code == 200
        assert env.emu.ratelimit.in_window(DEMO_API_KEY, anyio.current_time()) <= before


# ---------------------------------------------------------------- callbacks


async def test_callbacks_post_the_documented_bodies():
    """MediaCompleted and JobCompleted callbacks carry exactly the document's keys and values."""
    async with loopback() as env:
        file_id = await env.upload(notify_url=env.receiver_url)
        await env.wait_state(file_id, "MediaCompleted")
        with anyio.fail_after(10):
            await env.emu.wait_until(lambda: len(env.receiver.bodies) == 1)
        await env.api(
            "StartJob",
            file_id=file_id,
            output_format="Mp4H264",
            filters=["Noise"],
            notify_url=env.receiver_url,
        )
        with anyio.fail_after(10):
            await env.emu.wait_until(lambda: len(env.receiver.bodies) == 2)
        url = (await env.api("GetProgress", file_id=file_id)).json()["restored_file_url"]
    assert env.receiver.bodies == [
        {
            "file_id": file_id,
            "error_code": "MediaCompleted",
            "error_message": "Media completed successfully.",
        },
        {
            "file_id": file_id,
            "error_code": "JobCompleted",
            "error_message": "Job completed successfully.",
            "restored_file_url": url,
        },
    ]


async def test_failures_are_called_back_in_the_failure_form():
    """A failed job and an unsupported original each POST {file_id, error_code, error_message}."""
    files = {"/reel1.mov": mov_bytes(), "/page.mov": b"<!DOCTYPE html><html></html>"}
    async with loopback(EmulatorConfig(**FAST, job_failure_rate=1.0), files=files) as env:
        bad = await env.upload("/page.mov", notify_url=env.receiver_url)
        good = await env.upload(notify_url=env.receiver_url)
        await env.wait_state(good, "MediaCompleted")
        await env.api(
            "StartJob",
            file_id=good,
            output_format="Mp4H264",
            filters=[],
            notify_url=env.receiver_url,
        )
        with anyio.fail_after(10):
            await env.emu.wait_until(lambda: len(env.receiver.bodies) == 3)
    by_code = {b["error_code"]: b for b in env.receiver.bodies}
    assert set(by_code) == {"MediaFormatUnsupported", "MediaCompleted", "JobFailed"}
    assert by_code["MediaFormatUnsupported"]["file_id"] == bad
    assert set(by_code["JobFailed"]) == {"file_id", "error_code", "error_message"}


async def test_callbacks_are_retried_while_the_receiver_fails():
    """A receiver answering 503 twice gets the callback on the third attempt."""
    async with loopback(receiver=Receiver(failures=2)) as env:
        file_id = await env.upload(notify_url=env.receiver_url)
        with anyio.fail_after(10):
            await env.emu.wait_until(lambda: any(c.delivered for c in env.emu.callbacks))
    assert [c.outcome for c in env.emu.callbacks] == ["503", "503", "200"]
    assert env.receiver.bodies[0]["file_id"] == file_id


async def test_callbacks_are_retried_while_the_receiver_is_down():
    """A receiver that refuses connections gets every attempt, then the emulator gives up quietly."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        async with loopback(EmulatorConfig(**FAST, callback_attempts=3)) as env:
            await env.upload(notify_url=dead)
            with anyio.fail_after(10):
                await env.emu.wait_until(lambda: len(env.emu.callbacks) == 3)
            assert (await env.api("ListMedia")).status_code == 200
    assert [c.attempt for c in env.emu.callbacks] == [1, 2, 3]
    assert not any(c.delivered for c in env.emu.callbacks)


async def test_callback_loss_never_sends_a_seeded_share_of_callbacks():
    """`callback_loss` (a receiver that lost callbacks): each media's callback is sent or not by a seeded
    draw of its own; the media still completes (GetProgress says so)."""
    async with loopback(EmulatorConfig(**FAST, callback_loss=0.5, seed=7)) as env:
        ids = [await env.upload(notify_url=env.receiver_url) for _ in range(12)]
        for file_id in ids:
            await env.wait_state(file_id, "MediaCompleted")
        with anyio.fail_after(10):
            await env.emu.wait_until(
                lambda: len(env.receiver.bodies) + len(env.emu.callbacks_lost) == len(ids)
            )
    called = {b["file_id"] for b in env.receiver.bodies}
    assert 0 < len(called) < len(ids)
    assert called | set(env.emu.callbacks_lost) == set(ids)
    assert not called & set(env.emu.callbacks_lost)


# ---------------------------------------------------------------- observation, quirks, in-process, CLI


async def test_request_log_endpoint_has_the_five_keys_oldest_first():
    """GET /_emulator/log is a JSON array of {time, client, action, file_id, status}, oldest first."""
    async with loopback() as env:
        file_id = await env.upload()
        await env.api("GetProgress", file_id=file_id)
        await env.api("Nonsense")
        response = await env.client.get(env.running.origin + "/_emulator/log")
    entries = response.json()
    assert all(set(e) == {"time", "client", "action", "file_id", "status"} for e in entries)
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    assert [(e["action"], e["file_id"], e["status"]) for e in entries] == [
        ("UploadMedia", file_id, 200),
        ("GetProgress", file_id, 200),
        ("Nonsense", None, 400),
    ]
    assert entries[0]["client"].startswith("127.0.0.1:")
    assert [e.action for e in env.emu.log] == ["UploadMedia", "GetProgress", "Nonsense"]


async def test_quirks_switch_odd_key_case_and_string_progress():
    """With quirks on, keys come in odd case and progress as a numeric string."""
    async with loopback(EmulatorConfig(**FAST, quirks=True)) as env:
        response = await env.api("UploadMedia", original_file_url=env.file_origin + "/reel1.mov")
        file_id = response.json()["File_ID"]
        with anyio.fail_after(10):
            while True:
                progress = (await env.api("GetProgress", file_id=file_id)).json()
                if progress["STATE"] == "MediaCompleted":
                    break
                await anyio.sleep(0.01)
        assert progress["Progress"] == "100"
        error = (await env.api("GetProgress")).json()
        assert set(error) == {"Error_Code", "ERROR_MESSAGE"}


async def test_in_process_asgi_transport_works():
    """The app runs in-process through httpx.ASGITransport (the original is still fetched over HTTP)."""
    server = FileServer({"/reel1.mov": mov_bytes()})
    async with (
        RecuroEmulator(EmulatorConfig(**FAST)) as emulator,
        anyio.create_task_group() as tg,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=emulator.app),
            base_url="http://emulator.test",
            headers=AUTH,
        ) as client,
    ):
        origin = await tg.start(functools.partial(serve_asgi, server))
        api = "http://emulator.test/api/1.0/"
        up = await client.post(
            api, json={"action": "UploadMedia", "original_file_url": origin + "/reel1.mov"}
        )
        file_id = up.json()["file_id"]
        with anyio.fail_after(10):
            assert await emulator.wait_for_state(file_id, "MediaCompleted") == "MediaCompleted"
        await client.post(
            api,
            json={
                "action": "StartJob",
                "file_id": file_id,
                "output_format": "Mp4H264",
                "filters": [],
            },
        )
        with anyio.fail_after(10):
            assert await emulator.wait_for_state(file_id, "JobCompleted") == "JobCompleted"
        url = (await client.post(api, json={"action": "GetProgress", "file_id": file_id})).json()[
            "restored_file_url"
        ]
        assert url.startswith("http://emulator.test/download.php?guid=")
        body = (await client.get(url)).content
        assert body == expected_restored_bytes(
            mov_bytes(), output_format="Mp4H264", filters=[], output_scaling=None
        )
        tg.cancel_scope.cancel()


async def test_app_refuses_to_serve_when_not_entered():
    """Requests to the app of an emulator that is not entered get a 500 error body, not a hang."""
    emulator = RecuroEmulator(EmulatorConfig(**FAST))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator.app), headers=AUTH
    ) as client:
        response = await client.post("http://e.test/api/1.0/", json={"action": "ListMedia"})
    assert response.status_code == 500
    assert response.json()["error_code"] == "InternalError"


async def test_cli_prints_three_sourceable_lines_and_stops_on_ctrl_c():
    """`python -m recuro_async.testing` prints the base URL and demo credentials, serves, and exits 130 on SIGINT."""
    command = [sys.executable, "-m", "recuro_async.testing", "--port", "0", "--time-scale", "0.01"]
    async with await anyio.open_process(command, cwd=ROOT) as process:
        assert process.stdout is not None
        buffer = b""
        with anyio.fail_after(30):
            while buffer.count(b"\n") < 3:
                buffer += await process.stdout.receive()
        lines = buffer.decode().splitlines()[:3]
        assert all(line.startswith("export ") for line in lines)
        values = dict(shlex.split(line)[1].split("=", 1) for line in lines)
        assert list(values) == ["RECURO_BASE_URL", "RECURO_API_KEY", "RECURO_API_SECRET"]
        assert values["RECURO_BASE_URL"].startswith("http://127.0.0.1:")
        assert values["RECURO_BASE_URL"].endswith("/api/1.0/")
        headers = {"Authorization": f"{values['RECURO_API_KEY']}:{values['RECURO_API_SECRET']}"}
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(
                values["RECURO_BASE_URL"], json={"action": "ListOutputFormats"}, headers=headers
            )
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(20):
            assert await process.wait() == 130  # as `mediacrush emulator` and every other command
