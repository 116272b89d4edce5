"""The MediaCrush emulator mounted in-process (httpx.ASGITransport), driven with plain httpx."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from mediacrush_async.testing import (
    EmulatorConfig,
    MediaCrushEmulator,
    content_hash_of,
    expected_derived_bytes,
    sample_media,
)

BASE = "http://mediacrush.test"
FAST: dict[str, Any] = {"time_scale": 0.01}
TERMINAL = {"done", "error", "timeout", "unrecognised", "internal_error"}
OTHER = {"X-Real-IP": "10.9.8.7"}


@contextlib.asynccontextmanager
async def emulator(
    url_transport: httpx.AsyncBaseTransport | None = None, **config: Any
) -> AsyncIterator[tuple[MediaCrushEmulator, httpx.AsyncClient]]:
    async with MediaCrushEmulator(
        EmulatorConfig(**{**FAST, **config}), url_transport=url_transport
    ) as emu:
        transport = httpx.ASGITransport(app=emu.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield emu, client


async def upload(
    client: httpx.AsyncClient,
    data: bytes,
    name: str = "cat.gif",
    ctype: str | None = "image/gif",
    **kw: Any,
) -> httpx.Response:
    file: tuple[Any, ...] = (name, data) if ctype is None else (name, data, ctype)
    return await client.post("/api/upload/file", files={"file": file}, **kw)


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


async def test_pending_file_object_has_no_type_yet():
    """Right after upload the object is pending: blob_type null, flags {}, original only, size as compression."""
    gif = sample_media("gif")
    async with emulator(time_scale=1.0) as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        assert (await c.get(f"/api/{h}/status")).json() == {"status": "pending"}
        listing = (await c.get("/api/status", params={"list": h})).json()
        assert listing[h]["status"] == "pending"
        obj = listing[h]["file"]
        assert obj["blob_type"] is None
        assert obj["flags"] == {}
        assert obj["metadata"] == {}
        assert obj["extras"] == []
        assert obj["compression"] == float(len(gif))
        assert obj["files"] == [
            {"file": f"/{h}.gif", "type": "image/gif", "url": f"{BASE}/{h}.gif"}
        ]
        assert obj["title"] is None
        assert obj["description"] is None


async def test_status_includes_object_once_type_is_known():
    """`/api/<h>/status` adds `hash` and `<h>` as soon as detection is done, before `done`."""
    async with emulator(time_scale=0.05) as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        await wait_status(c, h, {"processing", "ready", "done"})
        body = (await c.get(f"/api/{h}/status")).json()
        assert body["hash"] == h
        assert body[h]["blob_type"] == "video"
        assert body[h]["flags"]["loop"] is True


async def test_doc_mode_status_object_only_when_done():
    """With the document's note switched on, the object appears only once the status is `done`."""
    async with emulator(time_scale=0.05, doc_status_result_only_when_done=True) as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        await wait_status(c, h, {"processing"})
        assert set((await c.get(f"/api/{h}/status")).json()) == {"status"}
        await wait_status(c, h)
        assert set((await c.get(f"/api/{h}/status")).json()) == {"status", "hash", h}


async def test_pretty_json_is_sorted_indented_with_trailing_spaces():
    """Replies are sorted, indented by 2, with Python 2's space after line-ending commas, no final newline."""
    async with emulator() as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        await wait_status(c, h)
        r = await c.get(f"/api/{h}/flags")
        assert r.headers["content-type"] == "application/json"
        assert r.text == (
            '{\n  "flags": {\n    "autoplay": true, \n    "loop": true, \n'
            '    "mute": true, \n    "nsfw": false\n  }\n}'
        )


async def test_xhr_requests_get_compact_json():
    """`X-Requested-With: XMLHttpRequest` gives one-line JSON."""
    async with emulator() as (_, c):
        r = await c.get("/api/AAAAAAAAAAAA", headers={"X-Requested-With": "XMLHttpRequest"})
        assert r.status_code == 404
        assert r.text == '{"error": 404}'


@pytest.mark.parametrize("value", ["1", "true", "0"])
async def test_cors_status_turns_errors_into_200_with_x_status(value):
    """Any non-empty X-CORS-Status sends HTTP 200 with the real code in `x-status`."""
    async with emulator() as (emu, c):
        r = await c.get("/api/AAAAAAAAAAAA/exists", headers={"X-CORS-Status": value})
        assert r.status_code == 200
        assert r.json() == {"exists": False, "x-status": 404}
        assert emu.log[-1].status == 404
        assert emu.log[-1].wire_status == 200


async def test_cors_status_on_success_adds_x_status_200():
    """A successful reply under X-CORS-Status carries `"x-status": 200`."""
    async with emulator() as (_, c):
        r = await upload(c, sample_media("gif"), headers={"X-CORS-Status": "1"})
        assert r.status_code == 200
        assert r.json() == {"hash": content_hash_of(sample_media("gif")), "x-status": 200}


async def test_empty_cors_status_header_is_ignored():
    """An empty X-CORS-Status header does not switch the mode on."""
    async with emulator() as (_, c):
        r = await c.get("/api/AAAAAAAAAAAA", headers={"X-CORS-Status": ""})
        assert r.status_code == 404


async def test_jsonp_wraps_the_body_and_keeps_the_status():
    """`?callback=NAME` gives `NAME(<json>);` plus a comment, as text/javascript, status unchanged."""
    async with emulator() as (_, c):
        r = await c.get("/api/AAAAAAAAAAAA", params={"callback": "cb"})
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/javascript")
        head, _, rest = r.text.partition(");\n")
        assert head == 'cb({\n  "error": 404\n}'
        assert rest.startswith("// ")
        assert len(rest.splitlines()) == 3


async def test_jsonp_with_cors_status_is_an_html_500():
    """JSONP and X-CORS-Status together fail as the server did (cors cannot parse JSONP)."""
    async with emulator() as (_, c):
        r = await c.get(
            "/api/AAAAAAAAAAAA", params={"callback": "cb"}, headers={"X-CORS-Status": "1"}
        )
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("text/html")


async def test_missing_form_fields_give_html_400():
    """A missing `file`, `url` or `list` form field gets Werkzeug's HTML 400, not JSON."""
    async with emulator() as (_, c):
        for path, data in (
            ("/api/upload/file", {"nofile": "x"}),
            ("/api/upload/url", {}),
            ("/api/album/create", {"lst": "x"}),
            ("/api/url/info", {}),
        ):
            r = await c.post(path, data=data)
            assert r.status_code == 400, path
            assert r.headers["content-type"].startswith("text/html")
            assert "<title>400 Bad Request</title>" in r.text


async def test_missing_list_on_get_routes_is_json_400():
    """`/api/info` and `/api/status` without `list` answer `{"error": 400}` as JSON."""
    async with emulator() as (_, c):
        for path in ("/api/info", "/api/status"):
            r = await c.get(path)
            assert r.status_code == 400
            assert r.json() == {"error": 400}


async def test_non_media_ends_unrecognised_and_disappears():
    """A text upload is accepted (200), ends `unrecognised`, then reads as failed everywhere."""
    text = sample_media("text")
    async with emulator() as (emu, c):
        r = await upload(c, text, "notes.md", "text/markdown")
        assert r.status_code == 200
        h = r.json()["hash"]
        assert (await wait_status(c, h))[-1] == "unrecognised"
        assert (await c.get(f"/api/{h}/status")).json() == {"status": "unrecognised"}
        r = await c.get(f"/api/{h}")
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("text/html")
        assert (await c.get("/api/info", params={"list": h})).json() == {h: None}
        assert (await c.get("/api/status", params={"list": h})).json() == {
            h: {"status": "unrecognised"}
        }
        r = await c.get(f"/api/{h}/exists")
        assert (r.status_code, r.json()) == (404, {"exists": False})
        assert (await c.delete(f"/api/{h}")).status_code == 401
        assert emu.stored_names() == []


@pytest.mark.parametrize("status", ["error", "internal_error"])
async def test_non_media_status_switch(status):
    """`non_media_status` reproduces the repo test (`error`) and issue #569 (`internal_error`)."""
    async with emulator(non_media_status=status) as (_, c):
        h = (await upload(c, sample_media("text"), "a.md", "text/plain")).json()["hash"]
        assert (await wait_status(c, h))[-1] == status


async def test_doc_mode_415_refuses_non_media_uploads():
    """With `doc_mode_415`, a non-media upload gets the document's 415 and media still gets 200."""
    async with emulator(doc_mode_415=True) as (_, c):
        r = await upload(c, sample_media("text"), "a.txt", "text/plain")
        assert (r.status_code, r.json()) == (415, {"error": 415})
        assert (await upload(c, sample_media("gif"))).status_code == 200


async def test_forced_failure_replaces_the_file_and_reupload_is_accepted():
    """A forced `error` ends processing, deletes the stored files, and a re-upload is processed again."""
    gif = sample_media("gif", seed=5)
    h = content_hash_of(gif)
    async with emulator() as (emu, c):
        emu.force_failure(h, "error")
        assert (await upload(c, gif)).status_code == 200
        seen = await wait_status(c, h)
        assert seen[-1] == "error"
        assert "ready" not in seen
        assert not [n for n in emu.stored_names() if n.startswith(h)]
        assert (await upload(c, gif)).status_code == 200
        assert (await wait_status(c, h))[-1] == "done"


async def test_failed_reupload_409_switch_gives_the_broken_object():
    """With `failed_reupload_409`, re-uploading failed bytes gets 409 with `[{"error": 404}, 404]` (issue #356)."""
    gif = sample_media("gif", seed=6)
    h = content_hash_of(gif)
    async with emulator(failed_reupload_409=True) as (emu, c):
        emu.force_failure(h, "internal_error")
        await upload(c, gif)
        await wait_status(c, h)
        r = await upload(c, gif)
        assert r.status_code == 409
        assert r.json() == {"error": 409, "hash": h, h: [{"error": 404}, 404]}


async def test_broken_409_object_switch():
    """With `broken_409_object`, every 409 embeds the broken object."""
    gif = sample_media("gif", seed=7)
    async with emulator(broken_409_object=True) as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        assert (await upload(c, gif)).json()[h] == [{"error": 404}, 404]


async def test_reupload_while_pending_is_accepted_again():
    """The same bytes uploaded again before processing starts get 200, not 409 (nothing stored yet)."""
    gif = sample_media("gif", seed=8)
    async with emulator(time_scale=1.0) as (_, c):
        assert (await upload(c, gif)).status_code == 200
        assert (await upload(c, gif)).status_code == 200


async def test_same_bytes_with_another_extension_is_not_a_duplicate():
    """A second upload with a different extension is a new 200 and replaces the original's name."""
    gif = sample_media("gif", seed=9)
    async with emulator() as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        assert (await upload(c, gif, "cat.dat", None)).status_code == 200
        obj = (await c.get(f"/api/{h}")).json()
        assert obj["original"] == f"/{h}.dat"
        assert obj["type"] == "application/octet-stream"


async def test_extension_from_content_type_uses_python2_jpe():
    """A name without a dot takes its extension from the type: `.jpe` for JPEG, as Python 2 guessed."""
    jpeg = sample_media("jpeg")
    async with emulator() as (_, c):
        h = (await upload(c, jpeg, "photo", "image/jpeg")).json()["hash"]
        await wait_status(c, h)
        obj = (await c.get(f"/api/{h}")).json()
        assert obj["original"] == f"/{h}.jpe"
        assert [f["file"] for f in obj["files"]] == [f"/{h}.jpe", f"/{h}.jpg"]
        assert (await c.get(f"/{h}.jpg")).status_code == 404
        served = (await c.get(f"/{h}.jpe")).content
        assert served == expected_derived_bytes(jpeg, f"{h}.jpe", original_ext="jpe")
        assert content_hash_of(served) != h


async def test_png_thumbnail_switch():
    """With `doc_png_thumbnails`, a video's thumbnail is `.png` and serves the png transform."""
    gif = sample_media("gif", seed=10)
    async with emulator(doc_png_thumbnails=True) as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        extras = (await c.get(f"/api/{h}")).json()["extras"]
        assert extras == [{"file": f"/{h}.png", "type": "image/png", "url": f"{BASE}/{h}.png"}]
        assert (await c.get(f"/{h}.png")).content == expected_derived_bytes(gif, f"{h}.png")


async def test_doc_exists_and_flags_switches():
    """`doc_exists_200` answers a missing id with 200; `doc_flags_without_nsfw` drops `nsfw`."""
    async with emulator(doc_exists_200=True, doc_flags_without_nsfw=True) as (_, c):
        r = await c.get("/api/AAAAAAAAAAAA/exists")
        assert (r.status_code, r.json()) == (200, {"exists": False})
        h = (await upload(c, sample_media("png"), "a.png", "image/png")).json()["hash"]
        await wait_status(c, h)
        assert (await c.get(f"/api/{h}/flags")).json() == {"flags": {}}


async def test_status_list_without_file_switch():
    """`doc_status_list_without_file` gives `{"status": s}` entries as in the document's example."""
    async with emulator(doc_status_list_without_file=True) as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        assert (await c.get("/api/status", params={"list": h})).json() == {h: {"status": "pending"}}


async def test_read_only_switch_refuses_uploads_with_403():
    """After the shutdown switch, uploads answer `{"error": 403}` and reads still work."""
    async with emulator(read_only=True) as (_, c):
        r = await upload(c, sample_media("gif"))
        assert (r.status_code, r.json()) == (403, {"error": 403})
        assert (await c.get("/api/AAAAAAAAAAAA")).status_code == 404


async def test_sharding_serves_under_first_character_and_redirects():
    """With `sharding`, paths are `/<c>/<name>` and `/<name>` 301-redirects there."""
    gif = sample_media("gif", seed=11)
    async with emulator(sharding=True) as (_, c):
        h = (await upload(c, gif)).json()["hash"]
        await wait_status(c, h)
        obj = (await c.get(f"/api/{h}")).json()
        assert obj["original"] == f"/{h[0]}/{h}.gif"
        assert obj["files"][1]["url"] == f"{BASE}/{h[0]}/{h}.mp4"
        r = await c.get(f"/{h}.mp4")
        assert r.status_code == 301
        assert r.headers["location"] == f"{BASE}/{h[0]}/{h}.mp4"
        assert (await c.get(f"/{h[0]}/{h}.mp4")).content == expected_derived_bytes(gif, f"{h}.mp4")


async def test_cdn_url_setting_changes_entry_urls_only():
    """`cdn_url` is used in each entry's `url`; `file` stays a relative path."""
    async with emulator(cdn_url="https://cdn.mediacru.sh") as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        entry = (await c.get(f"/api/{h}")).json()["files"][0]
        assert entry == {
            "file": f"/{h}.gif",
            "type": "image/gif",
            "url": f"https://cdn.mediacru.sh/{h}.gif",
        }


async def test_big_upload_spills_to_the_temp_dir():
    """Uploads and derived files above `memory_threshold` live in the emulator's temp dir."""
    big = sample_media("mp4", size=400_000, seed=1)
    async with emulator(memory_threshold=64 * 1024) as (emu, c):
        h = (await upload(c, big, "big.mp4", "video/mp4")).json()["hash"]
        assert emu.spool_dir is not None
        assert list(emu.spool_dir.iterdir())
        await wait_status(c, h)
        spool = emu.spool_dir
        got = (await c.get(f"/{h}.mp4")).content
        assert got == big
        assert (await c.get(f"/{h}.webm")).content == expected_derived_bytes(big, f"{h}.webm")
    assert not spool.exists()


async def test_text_route_sets_title_and_description():
    """`/api/<h>/text` sets title/description (owner only), 400 with neither, 414 over 2048 characters."""
    async with emulator() as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        r = await c.post(f"/api/{h}/text", data={"title": "Cat", "description": ""})
        assert (r.status_code, r.json()) == (200, {"status": "success"})
        obj = (await c.get(f"/api/{h}")).json()
        assert (obj["title"], obj["description"]) == ("Cat", "")
        assert (await c.post(f"/api/{h}/text", data={"other": "x"})).status_code == 400
        r = await c.post(f"/api/{h}/text", data={"title": "ok", "description": "x" * 2049})
        assert r.status_code == 414
        assert (await c.get(f"/api/{h}")).json()["title"] == "Cat"
        assert (
            await c.post(f"/api/{h}/text", data={"title": "x"}, headers=OTHER)
        ).status_code == 401
        assert (await c.post("/api/AAAAAAAAAAAA/text", data={"title": "x"})).status_code == 404


async def test_album_status_is_415_and_in_a_list_is_500():
    """An album's `/status` is 415; an album in `/api/status?list=` breaks the server (HTML 500)."""
    async with emulator() as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        a = (await c.post("/api/album/create", data={"list": h})).json()["hash"]
        assert (await c.get(f"/api/{a}/status")).status_code == 415
        r = await c.get("/api/status", params={"list": f"{h},{a}"})
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("text/html")


async def test_album_zip_queues_then_reports_done():
    """`/api/album/zip` answers success, then done once built; `has_zip` flips; no hash gives 415."""
    async with emulator() as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        a = (await c.post("/api/album/create", data={"list": h})).json()["hash"]
        assert (await c.post("/api/album/zip", data={})).status_code == 415
        assert (await c.post("/api/album/zip", data={"hash": h})).status_code == 404
        assert (await c.post("/api/album/zip", data={"hash": a})).json() == {"status": "success"}
        for _ in range(500):
            if (await c.post("/api/album/zip", data={"hash": a})).json() == {"status": "done"}:
                break
            await anyio.sleep(0.003)
        assert (await c.get(f"/api/{a}")).json()["metadata"] == {"has_zip": True}


async def test_info_list_mixes_files_albums_and_nulls():
    """`/api/info` returns every key: objects for files and albums, null for unknown ids."""
    async with emulator() as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        a = (await c.post("/api/album/create", data={"list": f"{h},{h}"})).json()["hash"]
        body = (await c.get("/api/info", params={"list": f"{h},{a},nope,{h}"})).json()
        assert set(body) == {h, a, "nope"}
        assert body["nope"] is None
        assert body[h]["hash"] == h
        assert body[a]["type"] == "application/album"
        assert [f["hash"] for f in body[a]["files"]] == [h, h]


async def test_album_left_without_files_reads_404_and_broken_in_info():
    """Deleting an album's only file makes it 404 alone and `[{"error": 404}, 404]` inside /api/info."""
    async with emulator() as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        a = (await c.post("/api/album/create", data={"list": h})).json()["hash"]
        assert (await c.delete(f"/api/{h}")).status_code == 200
        assert (await c.get(f"/api/{a}")).status_code == 404
        assert (await c.get("/api/info", params={"list": a})).json() == {a: [{"error": 404}, 404]}


async def test_url_upload_errors_without_content_length_and_404():
    """A remote reply without Content-Length is 400; a remote 404 is 404; a bad URL is 400."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/chunked.gif":
            return httpx.Response(200, content=iter([sample_media("gif")]))
        if request.url.path == "/missing.gif":
            return httpx.Response(404, content=b"gone")
        return httpx.Response(
            200, content=sample_media("gif", seed=12), headers={"Content-Type": "image/gif"}
        )

    async with emulator(url_transport=httpx.MockTransport(handler)) as (emu, c):
        for url, code in (
            ("http://remote.test/chunked.gif", 400),
            ("http://remote.test/missing.gif", 404),
            ("not a url", 400),
            ("ftp://remote.test/x.gif", 400),
        ):
            r = await c.post("/api/upload/url", data={"url": url})
            assert (r.status_code, r.json()) == (code, {"error": code}), url
        r = await c.post("/api/upload/url", data={"url": "http://remote.test/cat2014.gif"})
        h = r.json()["hash"]
        assert h == content_hash_of(sample_media("gif", seed=12))
        obj = (await c.get(f"/api/{h}")).json()
        assert obj["original"] == f"/{h}.gif"
        assert emu.log[-2].size == len(sample_media("gif", seed=12))


async def test_old_delete_endpoint_redirects_to_the_confirmation_page():
    """GET `/api/<h>/delete` is a 302 to `/<h>/delete`, an HTML page."""
    async with emulator() as (_, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        r = await c.get(f"/api/{h}/delete")
        assert r.status_code == 302
        assert r.headers["location"] == f"{BASE}/{h}/delete"
        page = await c.get(f"/{h}/delete")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")


async def test_unknown_routes_and_methods_are_html():
    """Unknown paths are HTML 404 and wrong methods HTML 405; OPTIONS lists the allowed methods."""
    async with emulator() as (_, c):
        assert (await c.get("/api/upload/file")).status_code == 405
        assert (await c.get("/no/such/page")).status_code == 404
        r = await c.options("/api/upload/file")
        assert r.status_code == 200
        assert r.headers["allow"] == "OPTIONS, POST"
        assert r.headers["access-control-allow-origin"] == "*"


async def test_cors_headers_only_on_success():
    """nginx's CORS headers come with 2xx/3xx replies, not with errors."""
    async with emulator() as (_, c):
        assert "access-control-allow-origin" not in (await c.get("/api/AAAAAAAAAAAA")).headers
        r = await upload(c, sample_media("gif"))
        assert r.headers["access-control-allow-headers"] == "X-CORS-Status"


async def test_feedback_limits():
    """Feedback over 10000 characters is 413 and the sixth in a day is 420."""
    async with emulator() as (_, c):
        assert (await c.post("/api/feedback", data={"feedback": "x" * 10001})).status_code == 413
        codes = [
            (await c.post("/api/feedback", data={"feedback": "hi"})).status_code for _ in range(6)
        ]
        assert codes == [200] * 5 + [420]


async def test_noscript_upload_redirects_to_the_status_page():
    """`/api/upload/noscript` redirects to `/status/<h>` for new and duplicate uploads."""
    gif = sample_media("gif", seed=13)
    async with emulator() as (_, c):
        r = await c.post("/api/upload/noscript", files={"file": ("a.gif", gif, "image/gif")})
        assert r.status_code == 302
        assert r.headers["location"] == f"{BASE}/status/{content_hash_of(gif)}"
        assert (await c.get(r.headers["location"])).status_code == 200


async def test_seeded_faults_are_reproducible():
    """Two emulators with the same seed answer the same request sequence with the same 500s."""

    async def statuses(seed: int) -> list[int]:
        async with emulator(seed=seed, fault_rate=0.4) as (emu, c):
            codes = [(await c.get("/api/AAAAAAAAAAAA")).status_code for _ in range(40)]
            assert [e.fault for e in emu.log].count("error") == codes.count(500)
            return codes

    first = await statuses(3)
    assert first == await statuses(3)
    assert set(first) == {404, 500}
    assert first != await statuses(4)


async def test_request_log_endpoint_lists_entries_oldest_first():
    """GET /_emulator/log returns the log as JSON, oldest first, and is not logged itself."""
    async with emulator() as (emu, c):
        h = (await upload(c, sample_media("gif"))).json()["hash"]
        await c.get(f"/api/{h}", headers=OTHER)
        entries = (await c.get("/_emulator/log")).json()
        assert [e["route"] for e in entries] == ["POST /api/upload/file", "GET /api/<hash>"]
        assert entries[0]["hash"] == h
        assert entries[0]["client"] == "127.0.0.1"
        assert entries[1]["client"] == "10.9.8.7"
        assert entries[0]["time"] <= entries[1]["time"]
        assert len(emu.log) == 2
        assert set(entries[0]) == {
            "time",
            "client",
            "route",
            "hash",
            "status",
            "wire_status",
            "fault",
            "size",
        }


async def test_control_route_forces_failures():
    """POST /_emulator/failure makes the next processing of a hash fail with the given status."""
    gif = sample_media("gif", seed=14)
    h = content_hash_of(gif)
    async with emulator() as (_, c):
        r = await c.post("/_emulator/failure", data={"hash": h, "status": "timeout"})
        assert r.json() == {"status": "ok"}
        assert (
            await c.post("/_emulator/failure", data={"hash": h, "status": "nope"})
        ).status_code == 400
        await upload(c, gif)
        assert (await wait_status(c, h))[-1] == "timeout"


async def test_emulator_cannot_be_reopened_and_warns_nothing_when_closed():
    """An emulator is opened once; `aclose()` twice is fine."""
    emu = MediaCrushEmulator(EmulatorConfig(**FAST))
    async with emu:
        pass
    await emu.aclose()
    with pytest.raises(RuntimeError, match="opened once"):
        await emu.__aenter__()


async def test_uploads_need_a_running_emulator():
    """The app answers an upload with an HTML 500 when the emulator was never opened."""
    emu = MediaCrushEmulator(EmulatorConfig(**FAST))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app), base_url=BASE) as c:
        r = await upload(c, sample_media("gif"))
        assert r.status_code == 500
        assert (await c.get("/api/AAAAAAAAAAAA")).json() == {"error": 404}


async def test_force_failure_validates_its_input():
    """`force_failure` names the allowed statuses."""
    async with MediaCrushEmulator(EmulatorConfig(**FAST)) as emu:
        with pytest.raises(ValueError, match="unrecognised"):
            emu.force_failure("AAAAAAAAAAAA", "done")


def test_log_entries_serialise_to_json():
    """Log entries are plain JSON values."""
    from mediacrush_async.testing import LogEntry

    entry = LogEntry(
        time=1.5, client="1.2.3.4", route="GET /api/<hash>", hash="h", status=404, wire_status=200
    )
    assert json.loads(json.dumps(entry.to_json()))["wire_status"] == 200


async def test_wait_for_status_wakes_on_each_change():
    """`wait_for_status` returns the stage reached, a failure status, or raises for an unknown id."""
    gif, bad = sample_media("gif", seed=20), sample_media("gif", seed=21)
    async with emulator(time_scale=0.05) as (emu, c):
        h = (await upload(c, gif)).json()["hash"]
        with anyio.fail_after(10):
            assert await emu.wait_for_status(h, "processing") == "processing"
            assert (await c.get(f"/api/{h}/status")).json()["status"] == "processing"
            assert await emu.wait_for_status(h) == "done"
        emu.force_failure(content_hash_of(bad), "timeout")
        hb = (await upload(c, bad)).json()["hash"]
        with anyio.fail_after(10):
            assert await emu.wait_for_status(hb) == "timeout"
        with pytest.raises(LookupError):
            await emu.wait_for_status("AAAAAAAAAAAA")
        with pytest.raises(ValueError, match="pending"):
            await emu.wait_for_status(h, "finished")


def test_python_dash_m_runs_the_cli():
    """`python -m mediacrush_async.testing --help` prints the emulator's usage."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "mediacrush_async.testing", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "MEDIACRUSH_BASE_URL" in result.stdout
