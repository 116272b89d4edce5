"""The MediaCrush emulator over real loopback sockets (uvicorn), driven with plain httpx and curl."""

from __future__ import annotations

import contextlib
import functools
import json
import shlex
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mediacrush_async.testing import (
    EmulatorConfig,
    MediaCrushEmulator,
    content_hash_of,
    expected_derived_bytes,
    run_emulator,
    sample_media,
)

ROOT = Path(__file__).resolve().parents[2]
FAST: dict[str, Any] = {"time_scale": 0.01}
TERMINAL = {"done", "error", "timeout", "unrecognised", "internal_error"}
OTHER = {"X-Real-IP": "203.0.113.9"}


@contextlib.asynccontextmanager
async def served(**config: Any) -> AsyncIterator[tuple[MediaCrushEmulator, httpx.AsyncClient]]:
    async with run_emulator(EmulatorConfig(**{**FAST, **config})) as running:
        assert running.base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as client:
            yield running.emulator, client


async def upload(
    client: httpx.AsyncClient,
    data: bytes,
    name: str = "cat.gif",
    ctype: str = "image/gif",
    **kw: Any,
) -> httpx.Response:
    return await client.post("/api/upload/file", files={"file": (name, data, ctype)}, **kw)


async def wait_status(client: httpx.AsyncClient, h: str, until: set[str] = TERMINAL) -> list[str]:
    seen: list[str] = []
    for _ in range(1000):
        status = (await client.get(f"/api/{h}/status")).json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in until:
            return seen
        await anyio.sleep(0.003)
    raise AssertionError(f"{h} never reached {until}; saw {seen}")


async def test_serve_reports_its_url_through_task_status():
    """`await tg.start(emu.serve)` returns the loopback base URL once the socket listens."""
    async with MediaCrushEmulator(EmulatorConfig(**FAST)) as emu, anyio.create_task_group() as tg:
        base_url = await tg.start(emu.serve)
        assert base_url == emu.base_url
        async with httpx.AsyncClient(base_url=base_url) as c:
            assert (await c.get("/api/AAAAAAAAAAAA/exists")).status_code == 404
        tg.cancel_scope.cancel()
    assert emu.base_url is None


@pytest.mark.parametrize("kind", ["gif", "mp4", "mp3", "png", "jpeg", "bmp"])
async def test_upload_processes_to_done_and_every_file_downloads(kind):
    """A file goes pending -> processing -> ready -> done and each listed file downloads as expected."""
    data = sample_media(kind, size=30_000)
    ctype = {"gif": "image/gif", "mp4": "video/mp4", "mp3": "audio/mpeg", "png": "image/png"}.get(
        kind, "application/octet-stream"
    )
    ext = {"jpeg": "jpg"}.get(kind, kind)
    async with served(time_scale=0.05) as (_, c):
        r = await upload(c, data, f"sample.{ext}", ctype)
        assert r.status_code == 200
        assert r.json() == {"hash": content_hash_of(data)}
        h = r.json()["hash"]
        seen = await wait_status(c, h)
        order = ["pending", "processing", "ready", "done"]
        assert seen == [s for s in order if s in seen]
        assert seen[0] == "pending"
        assert seen[-1] == "done"
        if kind == "gif":  # long enough stages (0.2 s each) to see every one
            assert seen == order
        obj = (await c.get(f"/api/{h}")).json()
        assert obj["hash"] == h
        assert obj["files"][0]["file"] == obj["original"] == f"/{h}.{ext}"
        assert obj["files"][0]["type"] == ctype
        for entry in obj["files"] + obj["extras"]:
            assert entry["url"] == f"{c.base_url}".rstrip("/") + entry["file"]
            got = await c.get(entry["url"])
            assert got.status_code == 200, entry
            assert got.content == expected_derived_bytes(data, entry["file"], original_ext=ext), (
                entry
            )
            assert got.headers["content-length"] == str(len(got.content))
            assert got.headers["accept-ranges"] == "bytes"
            assert got.headers["etag"].startswith('"')
        assert isinstance(obj["compression"], float)


async def test_blob_types_files_and_extras_per_type():
    """GIF/video list mp4, webm, ogv plus a jpg thumbnail; audio mp3 and ogg; images only the original."""
    samples = {
        "gif": ("a.gif", "image/gif"),
        "mp3": ("a.mp3", "audio/mpeg"),
        "png": ("a.png", "image/png"),
    }
    async with served() as (_, c):
        objs = {}
        for kind, (name, ctype) in samples.items():
            h = (await upload(c, sample_media(kind), name, ctype)).json()["hash"]
            await wait_status(c, h)
            objs[kind] = (h, (await c.get(f"/{h}.json")).json())
        h, gif = objs["gif"]
        assert gif["blob_type"] == "video"
        assert [(f["file"], f["type"]) for f in gif["files"]] == [
            (f"/{h}.gif", "image/gif"),
            (f"/{h}.mp4", "video/mp4"),
            (f"/{h}.webm", "video/webm"),
            (f"/{h}.ogv", "video/ogg"),
        ]
        assert [(f["file"], f["type"]) for f in gif["extras"]] == [(f"/{h}.jpg", "image/jpeg")]
        assert gif["metadata"]["dimensions"] == {"height": 32, "width": 48}
        h, mp3 = objs["mp3"]
        assert mp3["blob_type"] == "audio"
        assert [f["file"] for f in mp3["files"]] == [f"/{h}.mp3", f"/{h}.ogg"]
        assert mp3["extras"] == []
        assert mp3["metadata"]["has_audio"] is True
        h, png = objs["png"]
        assert png["blob_type"] == "image"
        assert [f["file"] for f in png["files"]] == [f"/{h}.png"]
        assert png["flags"] == {"nsfw": False}


async def test_duplicate_upload_gets_409_with_the_object_and_counts_bytes():
    """A second upload of processed bytes is 409 `{"error", "hash", <hash>: object}` and still counts."""
    gif = sample_media("gif")
    async with served() as (emu, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        r = await upload(c, gif)
        assert r.status_code == 409
        body = r.json()
        assert set(body) == {"error", "hash", h}
        assert (body["error"], body["hash"]) == (409, h)
        assert body[h] == (await c.get(f"/api/{h}")).json()
        assert emu.bytes_counted("127.0.0.1") == 2 * len(gif)
        assert emu.log[-2].status == 409
        assert emu.log[-2].size == len(gif)


async def test_album_create_and_its_checks():
    """Albums get 12 hex ids; unknown items 404, albums or failed files 415, more than 1024 items 413."""
    async with served() as (_, c):
        h1 = (await upload(c, sample_media("gif", seed=1))).json()["hash"]
        h2 = (await upload(c, sample_media("png", seed=1), "b.png", "image/png")).json()["hash"]
        r = await c.post("/api/album/create", data={"list": f"{h1},{h2}"})
        assert r.status_code == 200
        album = r.json()["hash"]
        assert len(album) == 12
        assert int(album, 16) >= 0
        obj = (await c.get(f"/api/{album}")).json()
        assert obj["type"] == "application/album"
        assert obj["blob_type"] == "album"
        assert obj["metadata"] == {"has_zip": False}
        assert [f["hash"] for f in obj["files"]] == [h1, h2]

        async def create(items: list[str]) -> tuple[int, Any]:
            resp = await c.post("/api/album/create", data={"list": ",".join(items)})
            return resp.status_code, resp.json()

        assert await create([h1, "AAAAAAAAAAAA"]) == (404, {"error": 404})
        assert await create([""]) == (404, {"error": 404})
        assert await create([h1, album]) == (415, {"error": 415})
        assert await create([h1] * 1025) == (413, {"error": 413})
        assert (await create([h1] * 1024))[0] == 200
        # Existence and type are checked item by item before the size.
        assert await create([h1] * 1024 + ["AAAAAAAAAAAA"]) == (404, {"error": 404})
        assert await create([h1] * 1024 + [album]) == (415, {"error": 415})


async def test_album_drops_deleted_files():
    """Deleting a file removes it from albums that hold it (issue #422)."""
    async with served() as (_, c):
        h1 = (await upload(c, sample_media("gif", seed=2))).json()["hash"]
        h2 = (await upload(c, sample_media("gif", seed=3))).json()["hash"]
        album = (await c.post("/api/album/create", data={"list": f"{h1},{h2},{h1}"})).json()["hash"]
        assert (await c.delete(f"/api/{h1}")).json() == {"status": "success"}
        assert [f["hash"] for f in (await c.get(f"/api/{album}")).json()["files"]] == [h2]


async def test_flags_defaults_and_the_exact_true_rule():
    """GIF flags start on, MP4 off; only the exact string `true` sets a flag; an unknown flag is 415."""
    async with served() as (_, c):
        gif = (await upload(c, sample_media("gif", seed=4))).json()["hash"]
        mp4 = (await upload(c, sample_media("mp4", seed=4), "a.mp4", "video/mp4")).json()["hash"]
        await wait_status(c, gif)
        await wait_status(c, mp4)
        assert (await c.get(f"/api/{gif}/flags")).json() == {
            "flags": {"autoplay": True, "loop": True, "mute": True, "nsfw": False}
        }
        assert (await c.get(f"/api/{mp4}/flags")).json() == {
            "flags": {"autoplay": False, "loop": False, "mute": False, "nsfw": False}
        }
        r = await c.post(
            f"/api/{mp4}/flags",
            data={"autoplay": "true", "loop": "True", "mute": "1", "nsfw": "on"},
        )
        assert r.json() == {
            "flags": {"autoplay": True, "loop": False, "mute": False, "nsfw": False}
        }
        r = await c.post(f"/api/{gif}/flags", data={"loop": "false", "sparkles": "true"})
        assert (r.status_code, r.json()) == (415, {"error": 415})
        assert (await c.get(f"/api/{gif}/flags")).json()["flags"]["loop"] is True
        assert (await c.post("/api/AAAAAAAAAAAA/flags", data={"loop": "true"})).status_code == 404
        assert (await c.get("/api/AAAAAAAAAAAA/flags")).status_code == 404


async def test_flags_and_delete_belong_to_the_uploader_address():
    """Only the uploading address may change flags or delete; X-Real-IP from loopback is another client."""
    async with served() as (_, c):
        h = (await upload(c, sample_media("gif", seed=5))).json()["hash"]
        await wait_status(c, h)
        r = await c.post(f"/api/{h}/flags", data={"nsfw": "true"}, headers=OTHER)
        assert (r.status_code, r.json()) == (401, {"error": 401})
        r = await c.delete(f"/api/{h}", headers=OTHER)
        assert (r.status_code, r.json()) == (401, {"error": 401})
        assert (await c.get(f"/api/{h}/exists")).json() == {"exists": True}
        r = await c.delete(f"/api/{h}")
        assert (r.status_code, r.json()) == (200, {"status": "success"})
        assert (await c.get(f"/api/{h}")).status_code == 404
        assert (await c.get(f"/{h}.mp4")).status_code == 404
        assert (await c.delete(f"/api/{h}")).status_code == 404


async def test_other_client_owns_what_it_uploads():
    """A file uploaded with X-Real-IP belongs to that address, not to the loopback peer."""
    async with served() as (_, c):
        h = (await upload(c, sample_media("gif", seed=6), headers=OTHER)).json()["hash"]
        assert (await c.delete(f"/api/{h}")).status_code == 401
        assert (await c.delete(f"/api/{h}", headers=OTHER)).status_code == 200


async def test_byte_budget_gives_420_then_resets_with_the_window():
    """Bytes count before the check (also for refused uploads) until the fixed window ends."""
    a, b, small = (
        sample_media("gif", size=6000, seed=7),
        sample_media("gif", size=6000, seed=8),
        sample_media("png"),
    )
    async with served(byte_limit=10_000, byte_window=60.0) as (emu, c):
        assert (await upload(c, a)).status_code == 200
        r = await upload(c, b)
        assert (r.status_code, r.json()) == (420, {"error": 420})
        assert (await upload(c, small, "s.png", "image/png")).status_code == 420
        assert emu.bytes_counted("127.0.0.1") == len(a) + len(b) + len(small)
        assert (await upload(c, small, "s.png", "image/png", headers=OTHER)).status_code == 200
        for _ in range(200):
            if emu.bytes_counted("127.0.0.1") == 0:
                break
            await anyio.sleep(0.01)
        assert (await upload(c, b)).status_code == 200


async def test_url_upload_fetches_over_http():
    """URL uploads fetch the bytes: a new file is 200 (and known to url/info), known bytes 409, 404 stays 404."""
    gif = sample_media("gif", seed=9)
    async with served() as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        mp4_url = f"{c.base_url}".rstrip("/") + f"/{h}.mp4"
        r = await c.post("/api/upload/url", data={"url": mp4_url})
        assert r.status_code == 200
        new = r.json()["hash"]
        assert new == content_hash_of(expected_derived_bytes(gif, f"{h}.mp4"))
        obj = (await c.get(f"/api/{new}")).json()
        assert obj["type"] == "video/mp4"
        assert obj["original"] == f"/{new}.mp4"
        info = (
            await c.post("/api/url/info", data={"list": f"{mp4_url},http://does.not/exist.gif"})
        ).json()
        assert info["http://does.not/exist.gif"] is None
        assert info[mp4_url]["hash"] == new
        r = await c.post("/api/upload/url", data={"url": f"{c.base_url}".rstrip("/") + f"/{h}.gif"})
        assert r.status_code == 409
        assert r.json()["hash"] == h
        r = await c.post(
            "/api/upload/url", data={"url": f"{c.base_url}".rstrip("/") + "/nothing.gif"}
        )
        assert (r.status_code, r.json()) == (404, {"error": 404})


async def test_url_upload_over_the_limit_is_413():
    """A URL whose Content-Length exceeds `max_url_size` is refused with 413."""
    gif = sample_media("gif", size=5000, seed=10)
    async with served(max_url_size=1000) as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        r = await c.post("/api/upload/url", data={"url": f"{c.base_url}".rstrip("/") + f"/{h}.gif"})
        assert (r.status_code, r.json()) == (413, {"error": 413})


async def test_front_server_body_limit_is_an_nginx_html_413():
    """A file upload above `max_body_size` gets nginx's HTML 413, as production did."""
    async with served(max_body_size=2000) as (_, c):
        r = await upload(c, sample_media("gif", size=5000))
        assert r.status_code == 413
        assert r.headers["content-type"].startswith("text/html")
        assert "413 Request Entity Too Large" in r.text


async def test_big_refused_bodies_are_read_so_the_client_sees_the_413():
    """A multi-MiB body over the limit, declared or chunked, still gets its HTML 413 (no reset)."""
    big = sample_media("mp4", size=3_000_000)
    async with served(max_body_size=1_000_000) as (_, c):
        r = await upload(c, big, "big.mp4", "video/mp4")
        assert r.status_code == 413
        boundary = "----emu"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.mp4"\r\n\r\n'.encode()
            + big
            + f"\r\n--{boundary}--\r\n".encode()
        )

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 65536):
                yield body[i : i + 65536]

        r = await c.post(
            "/api/upload/file",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert r.status_code == 413
        assert "nginx" in r.text
        assert (await c.get("/api/AAAAAAAAAAAA")).status_code == 404


async def test_ranges_and_conditional_requests():
    """Downloads honour Range (206), If-Range (206 on a match, 200 otherwise), 416 past the end, and HEAD."""
    data = sample_media("mp4", size=20_000, seed=11)
    async with served() as (_, c):
        h = (await upload(c, data, "v.mp4", "video/mp4")).json()["hash"]
        await wait_status(c, h)
        url = f"/{h}.webm"
        full = expected_derived_bytes(data, f"{h}.webm")
        head = await c.head(url)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(full))
        etag = head.headers["etag"]
        r = await c.get(url, headers={"Range": "bytes=10-19"})
        assert r.status_code == 206
        assert r.content == full[10:20]
        assert r.headers["content-range"] == f"bytes 10-19/{len(full)}"
        r = await c.get(url, headers={"Range": "bytes=-7", "If-Range": etag})
        assert (r.status_code, r.content) == (206, full[-7:])
        r = await c.get(url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
        assert (r.status_code, r.content) == (200, full)
        r = await c.get(url, headers={"Range": f"bytes={len(full)}-"})
        assert r.status_code == 416
        assert r.headers["content-range"] == f"bytes */{len(full)}"
        assert (await c.get(url, headers={"If-None-Match": etag})).status_code == 304


@pytest.mark.parametrize("switch", [False, True])
async def test_a_206_names_accept_ranges_only_when_switched_on(switch):
    """As nginx served the files, a 206 carries no Accept-Ranges (the 200 does), unless switched on."""
    gif = sample_media("gif", seed=14)
    async with served(accept_ranges_on_206=switch) as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        part = await c.get(f"/{h}.gif", headers={"Range": "bytes=0-9"})
        whole = await c.get(f"/{h}.gif")
    assert (part.status_code, part.content) == (206, gif[:10])
    assert ("accept-ranges" in part.headers) is switch
    assert whole.headers["accept-ranges"] == "bytes"


async def test_dropped_connection_fault():
    """With `drop_rate=1` the connection dies mid-body after the request took effect."""
    gif = sample_media("gif", seed=12)
    async with served(drop_rate=1.0) as (emu, c):
        with pytest.raises(httpx.RemoteProtocolError):
            await upload(c, gif)
        assert emu.log[-1].fault == "drop"
        assert emu.log[-1].status == 200
        assert emu.log[-1].hash == content_hash_of(gif)


async def test_truncated_download_fault_hits_only_downloads():
    """With `truncate_rate=1` the API works but every file download ends early."""
    gif = sample_media("gif", size=50_000, seed=13)
    async with served(truncate_rate=1.0) as (emu, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(f"/{h}.gif")
        assert emu.log[-1].fault == "truncate"


async def test_bandwidth_cap_paces_downloads():
    """A 100 kB/s cap makes a 30 kB download take at least about 0.3 s."""
    data = sample_media("gif", size=30_000, seed=14)
    async with served(bandwidth=100_000) as (_, c):
        h = (await upload(c, data)).json()["hash"]
        await wait_status(c, h)
        started = anyio.current_time()
        got = (await c.get(f"/{h}.gif")).content
        assert got == data
        assert anyio.current_time() - started >= 0.25


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_documents_curl_command(tmp_path):
    """`curl -F file=@/tmp/cat.gif <base>/api/upload/file` returns the documented `{"hash": ...}` shape."""
    cat = tmp_path / "cat.gif"
    cat.write_bytes(sample_media("gif", seed=15))
    async with served() as (_, c):
        base = f"{c.base_url}".rstrip("/")
        result = await anyio.run_process(
            ["curl", "-sS", "-F", f"file=@{cat}", f"{base}/api/upload/file"]
        )
        text = result.stdout.decode()
        h = content_hash_of(cat.read_bytes())
        assert text == '{\n  "hash": "' + h + '"\n}'
        assert json.loads(text) == {"hash": h}
        obj = (await c.get(f"/api/{h}")).json()
        assert obj["type"] == "image/gif"
        assert obj["original"] == f"/{h}.gif"
        again = await anyio.run_process(
            ["curl", "-sS", "-F", f"file=@{cat}", f"{base}/api/upload/file"]
        )
        assert json.loads(again.stdout)["hash"] == h


async def test_cli_prints_the_base_url_first_and_stops_on_sigint():
    """`mediacrush emulator` prints export MEDIACRUSH_BASE_URL=... first, serves, and exits 130 on Ctrl-C."""
    command = [
        sys.executable,
        "-m",
        "mediacrush_async.testing._cli",
        "emulator",
        "--time-scale",
        "0.01",
    ]
    async with await anyio.open_process(command, cwd=ROOT) as proc:
        assert proc.stdout is not None
        buffered = b""
        with anyio.fail_after(20):
            while b"\n" not in buffered:
                buffered += await proc.stdout.receive()
        first = buffered.split(b"\n", 1)[0].decode()
        assert first.startswith("export MEDIACRUSH_BASE_URL=http://127.0.0.1:")
        base_url = shlex.split(first)[1].split("=", 1)[1]
        async with httpx.AsyncClient(base_url=base_url) as c:
            assert (await c.get("/api/AAAAAAAAAAAA/exists")).status_code == 404
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(20):
            assert await proc.wait() == 130


def test_cli_rejects_bad_settings(capsys):
    """A bad setting is a usage error (exit 2) with a message naming it."""
    from mediacrush_async.testing._cli import main

    assert main(["emulator", "--fault-rate", "2"]) == 2
    assert "fault_rate" in capsys.readouterr().err


async def test_run_emulator_serves_twice_in_one_test():
    """Two emulators can run side by side on different ports."""
    run = functools.partial(run_emulator, EmulatorConfig(**FAST))
    async with run() as one, run() as two:
        assert one.base_url != two.base_url


async def test_errors_in_the_body_propagate_unwrapped():
    """An exception raised inside `async with run_emulator(...)` comes out as itself, not an ExceptionGroup."""
    with pytest.raises(KeyError):
        async with run_emulator(EmulatorConfig(**FAST)):
            raise KeyError("boom")
    with pytest.raises(KeyError):
        async with MediaCrushEmulator(EmulatorConfig(**FAST)):
            raise KeyError("boom")
