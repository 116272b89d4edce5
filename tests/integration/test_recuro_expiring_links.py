"""Expiring restored-file links (issue 11 item 2): the emulator's `restored_url_ttl` and the client's resume.

With the option on, every restored_file_url handed out is signed with an expiry; after it, download.php
answers 403, and GetProgress / ListMedia hand out a fresh link to the same file. The client raises
`DownloadLinkExpiredError` without retrying the stale link and resumes the same `.part` from the fresh
link with `reissue_of=`, checked with If-Range. Expiry is waited for with `sleep_until` the link's own
`expires` (the emulator's clock), never with a guessed sleep.
"""

from __future__ import annotations

import contextlib
import functools
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import httpx
import pytest

from _clientkit._download import DownloadOptions
from recuro_async import DownloadLinkExpiredError, RecuroClient
from recuro_async.testing import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    EmulatorConfig,
    RunningEmulator,
    expected_restored_bytes,
    run_emulator,
    serve_asgi,
)

AUTH = {"Authorization": f"{DEMO_API_KEY}:{DEMO_API_SECRET}"}
JOB = {"output_format": "MovProRes4444", "filters": ["ReGrain"], "output_scaling": None}
# 100 s of service time = 1 s of real time at time_scale 0.01.
EXPIRING = EmulatorConfig(time_scale=0.01, rate_limit=100_000, restored_url_ttl=100)


def sample(size: int) -> bytes:
    head = bytes.fromhex("1A45DFA3")
    return head + bytes((i * 7 + i // 999) % 256 for i in range(size - len(head)))


class FileServer:
    """Serves one original at /film/reel.mkv."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(self.content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": self.content})


@attrs.frozen
class Restored:
    running: RunningEmulator
    http: httpx.AsyncClient
    file_id: str
    original: bytes

    async def api(self, action: str, **params: Any) -> Any:
        response = await self.http.post(self.running.base_url, json={"action": action, **params})
        return response.json() if response.content else None

    async def fresh_url(self) -> str:
        return str((await self.api("GetProgress", file_id=self.file_id))["restored_file_url"])

    @property
    def body(self) -> bytes:
        return expected_restored_bytes(self.original, **JOB)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def restored(config: EmulatorConfig, original: bytes) -> AsyncIterator[Restored]:
    async with (
        run_emulator(config) as running,
        anyio.create_task_group() as tg,
        httpx.AsyncClient(headers=AUTH, trust_env=False, timeout=30) as http,
    ):
        origin = await tg.start(functools.partial(serve_asgi, FileServer(original)))
        r = Restored(running, http, "", original)
        file_id = (await r.api("UploadMedia", original_file_url=f"{origin}/film/reel.mkv"))[
            "file_id"
        ]
        r = attrs.evolve(r, file_id=file_id)
        emu = running.emulator
        with anyio.fail_after(30):
            await emu.wait_for_state(file_id, "MediaCompleted")
            await r.api("StartJob", file_id=file_id, **{k: v for k, v in JOB.items() if v})
            await emu.wait_for_state(file_id, "JobCompleted")
        yield r
        tg.cancel_scope.cancel()


def expiry_of(url: str) -> float:
    return float(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["expires"][0])


async def test_links_are_signed_expire_with_403_and_are_handed_out_fresh():
    """A signed link works, a tampered one is refused, an expired one answers 403; the fresh one works."""
    async with restored(EXPIRING, sample(20_000)) as r:
        url = await r.fresh_url()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert set(query) == {"guid", "expires", "sig"}
        first = await r.http.get(url)
        assert first.status_code == 200
        assert first.content == r.body
        tampered = url.replace(f"sig={query['sig'][0]}", "sig=" + "0" * 32)
        assert (await r.http.get(tampered)).status_code == 403
        unsigned = url.split("&expires=")[0]
        assert (await r.http.get(unsigned)).status_code == 403
        await anyio.sleep_until(expiry_of(url) + 0.01)
        expired = await r.http.get(url)
        assert expired.status_code == 403
        assert expired.json()["error_code"] == "LinkExpired"
        listed = await r.api("ListMedia")
        fresh_listed = next(m["restored_file_url"] for m in listed if m["file_id"] == r.file_id)
        fresh = await r.fresh_url()
        assert fresh != url
        assert expiry_of(fresh) > expiry_of(url)
        again = await r.http.get(fresh)
        assert again.status_code == 200
        assert again.headers["etag"] == first.headers["etag"]
        assert (await r.http.get(fresh_listed)).status_code == 200


async def test_links_do_not_expire_by_default():
    """Without the option the URL is the plain `download.php?guid=` one."""
    config = EmulatorConfig(time_scale=0.01, rate_limit=100_000)
    async with restored(config, sample(5_000)) as r:
        url = await r.fresh_url()
    assert set(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)) == {"guid"}


def test_ttl_option_is_validated():
    """A TTL must be None or > 0."""
    with pytest.raises(ValueError, match="restored_url_ttl"):
        EmulatorConfig(restored_url_ttl=0)


async def test_client_resumes_an_expired_download_from_the_fresh_link(tmp_path):
    """Interrupted, then expired: one typed error, no retry of the stale link; the fresh link resumes.

    Only the bytes not yet on disk are fetched again (the resume is a 206 from the interrupted point).
    """
    async with restored(EXPIRING, sample(2_000_000)) as r:
        body = r.body
        old = await r.fresh_url()
        options = DownloadOptions(chunk_size=64 * 1024, backoff_base=0.0)
        async with RecuroClient(
            DEMO_API_KEY,
            DEMO_API_SECRET,
            base_url=r.running.base_url,
            rate_limit=None,
            download_options=options,
        ) as client:
            with anyio.CancelScope() as scope:  # a crash after some bytes
                await client.download(
                    old,
                    tmp_path,
                    progress=lambda done, _total: scope.cancel() if done >= 500_000 else None,
                )
            assert scope.cancelled_caught
            (part,) = tmp_path.glob("*.part")
            kept = part.stat().st_size
            assert 500_000 <= kept < len(body)
            await anyio.sleep_until(expiry_of(old) + 0.01)
            downloads_before = len([e for e in r.running.emulator.log if e.action == "download"])
            with pytest.raises(DownloadLinkExpiredError) as caught:
                await client.download(old, tmp_path)
            assert caught.value.status_code == 403
            assert caught.value.part_path == str(part)
            log = [e for e in r.running.emulator.log if e.action == "download"]
            assert len(log) == downloads_before + 1  # the stale link was asked once, not six times
            new = await r.fresh_url()
            served_before = r.running.emulator.restored_bytes_sent(r.file_id)
            path = await client.download(new, tmp_path, reissue_of=old)
            served_again = r.running.emulator.restored_bytes_sent(r.file_id) - served_before
        assert path.read_bytes() == body
        assert served_again == len(body) - kept  # server-counted: no byte on disk fetched twice
        last = [e for e in r.running.emulator.log if e.action == "download"][-1]
        assert last.status == 206
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
