"""MediaCrushClient over respx: every route and error, both status modes, uploads, pacing, lifecycle."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from fakeclock import FakeClock

from mediacrush_async import (
    Album,
    ByteBudget,
    ConfigurationError,
    File,
    FileEntry,
    InvalidArgumentError,
    InvalidURLError,
    MediaCrushClient,
    NotFoundError,
    NotOwnerError,
    ProcessingStatus,
    RateLimitedError,
    ServerError,
    Status,
    TooLargeError,
    TransportError,
    UnsupportedMediaError,
    WaitTimeoutError,
    content_hash,
)
from mediacrush_async._constants import CHUNK_SIZE, MAX_URL_LENGTH

BASE = "https://mediacru.sh"
H = "LxqXxVPAvqqB"
H2 = "CPvuR5lRhmS0"
ALBUM = "6ecd2bbd34ec"


def file_object(hash_: str = H, **extra: Any) -> dict[str, Any]:
    """A file object as the server sends it once processed (a GIF)."""
    obj: dict[str, Any] = {
        "blob_type": "video",
        "compression": 12.5,
        "description": None,
        "extras": [
            {
                "file": f"/{hash_}.jpg",
                "type": "image/jpeg",
                "url": f"https://cdn.mediacru.sh/{hash_}.jpg",
            }
        ],
        "files": [
            {
                "file": f"/{hash_}.gif",
                "type": "image/gif",
                "url": f"https://cdn.mediacru.sh/{hash_}.gif",
            },
            {
                "file": f"/{hash_}.mp4",
                "type": "video/mp4",
                "url": f"https://cdn.mediacru.sh/{hash_}.mp4",
            },
        ],
        "flags": {"autoplay": True, "loop": True, "mute": True, "nsfw": False},
        "hash": hash_,
        "metadata": {
            "dimensions": {"height": 281, "width": 500},
            "has_audio": False,
            "has_video": True,
        },
        "original": f"/{hash_}.gif",
        "title": None,
        "type": "image/gif",
    }
    obj.update(extra)
    return obj


def server(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    """A reply the way the real server makes it: with X-CORS-Status, HTTP 200 and the code in `x-status`."""

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):  # an HTML page: the cors decorator never wraps it
            return httpx.Response(status, text=body, headers={"Content-Type": "text/html"})
        if request.headers.get("X-CORS-Status") and isinstance(body, dict):
            return httpx.Response(200, json={**body, "x-status": status})
        return httpx.Response(status, json=body)

    return handler


def sequence(
    *handlers: Callable[[httpx.Request], httpx.Response],
) -> Callable[[httpx.Request], httpx.Response]:
    """Answer successive requests with successive handlers (the last one repeats)."""
    calls = iter(handlers)
    last: list[Callable[[httpx.Request], httpx.Response]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        nxt = next(calls, None)
        if nxt is not None:
            last[:] = [nxt]
        return last[0](request)

    return handler


@pytest.fixture(params=[False, True], ids=["plain", "cors"])
def cors(request) -> bool:
    return request.param


@pytest.fixture
def router():
    return respx.Router(base_url=BASE, assert_all_called=False)


@pytest.fixture
async def http(router):
    client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    yield client
    await client.aclose()


@pytest.fixture
def clock():
    return FakeClock(start=1000.0)


@pytest.fixture
async def mc(http, clock, cors):
    async with MediaCrushClient(BASE, cors_status=cors, http_client=http, clock=clock) as client:
        yield client


# ---------------------------------------------------------------- configuration and lifecycle


def test_remote_http_base_url_is_refused():
    """A plain-http base URL to a remote host raises ConfigurationError; loopback is allowed."""
    with pytest.raises(ConfigurationError, match="https"):
        MediaCrushClient("http://mediacru.sh")


async def test_loopback_http_is_allowed_and_owned_client_closes():
    """http:// on loopback works; a client that made its own httpx client closes it."""
    client = MediaCrushClient("http://127.0.0.1:9999")
    async with client:
        assert client.base_url == "http://127.0.0.1:9999"
    assert client._http.is_closed


async def test_lifecycle_guard_and_caller_client_stays_open(http, clock):
    """A client opens once; calls after close fail; a caller's http_client is never closed."""
    client = MediaCrushClient(http_client=http, clock=clock)
    async with client:
        pass
    assert not http.is_closed
    with pytest.raises(RuntimeError, match="opened once"):
        async with client:
            pass
    with pytest.raises(RuntimeError, match="closed"):
        await client.info(H)
    assert "mediacru.sh" in repr(client)


async def test_unclosed_client_warns(http, clock):
    """A client that owns its HTTP client and is dropped while open warns with ResourceWarning."""
    client = MediaCrushClient()
    await client.__aenter__()
    with pytest.warns(ResourceWarning, match="not closed"):
        client.__del__()
    await client.aclose()
    client.__del__()  # closed: silent


async def test_a_420_outside_uploads_is_not_a_pause(router, mc):
    """Only uploads pause on 420; any other route raises RateLimitedError at once."""
    route = router.get(f"/api/{H}").mock(side_effect=server(420, {"error": 420}))
    with pytest.raises(RateLimitedError):
        await mc.info(H)
    assert route.call_count == 1


def test_bad_options_are_refused():
    """A negative max_retries or a non-ByteBudget budget raises a ValueError naming the option."""
    with pytest.raises(ValueError, match="max_retries"):
        MediaCrushClient(max_retries=-1)
    with pytest.raises(ValueError, match="byte_budget"):
        MediaCrushClient(byte_budget=5)  # type: ignore[arg-type]


# ---------------------------------------------------------------- routes


async def test_info_file_and_album(router, mc, cors):
    """info() gives a File or an Album chosen by `type`, in both status modes."""
    router.get(f"/api/{H}").mock(side_effect=server(200, file_object()))
    router.get(f"/api/{ALBUM}").mock(
        side_effect=server(
            200,
            {
                "blob_type": "album",
                "files": [file_object()],
                "hash": ALBUM,
                "metadata": {"has_zip": False},
                "type": "application/album",
            },
        )
    )
    blob = await mc.info(H)
    assert isinstance(blob, File)
    assert blob.files[1].type == "video/mp4"
    album = await mc.info(ALBUM)
    assert isinstance(album, Album)
    assert album.files[0].hash == H
    sent = router.calls[0].request
    assert (sent.headers.get("X-CORS-Status") == "1") is cors


async def test_info_not_found(router, mc):
    """A 404 `{"error": 404}` raises NotFoundError with the status and error code."""
    router.get(f"/api/{H}").mock(side_effect=server(404, {"error": 404}))
    with pytest.raises(NotFoundError) as caught:
        await mc.info(H)
    assert (caught.value.status_code, caught.value.error, caught.value.route) == (404, 404, "info")


async def test_html_500_is_retried_then_raised(router, mc, clock):
    """The application's HTML 500 page is retried with backoff, then raised as ServerError."""
    route = router.get(f"/api/{H}").mock(side_effect=server(500, "<html><h1>Error</h1></html>"))
    async with clock.autoadvance():
        with pytest.raises(ServerError) as caught:
            await mc.info(H)
    assert route.call_count == 5
    assert caught.value.error is None
    assert "Error" in caught.value.body_excerpt


async def test_5xx_then_success(router, mc, clock):
    """A 502 from the front server is retried and the next good reply wins."""
    route = router.get(f"/api/{H}/exists").mock(
        side_effect=sequence(server(502, "<html>Bad Gateway</html>"), server(200, {"exists": True}))
    )
    async with clock.autoadvance():
        assert await mc.exists(H) is True
    assert route.call_count == 2


async def test_exists_true_and_404_false(router, mc):
    """exists() is True for 200 and False for the server's 404 `{"exists": false}`."""
    router.get(f"/api/{H}/exists").mock(side_effect=server(200, {"exists": True}))
    router.get(f"/api/{H2}/exists").mock(side_effect=server(404, {"exists": False}))
    assert await mc.exists(H) is True
    assert await mc.exists(H2) is False


async def test_info_many_and_broken_album_form(router, mc):
    """info_many() maps every asked hash: objects, albums, None for null and for `[{"error": 404}, 404]`."""
    body = {H: file_object(), H2: None, ALBUM: [{"error": 404}, 404]}
    route = router.get("/api/info").mock(side_effect=server(200, body))
    result = await mc.info_many([H, H2, ALBUM, H])
    assert list(result) == [H, H2, ALBUM]
    assert isinstance(result[H], File)
    assert result[H2] is None
    assert result[ALBUM] is None
    assert parse_qs(route.calls[0].request.url.query.decode())["list"] == [f"{H},{H2},{ALBUM}"]


async def test_long_lists_are_split(router, mc):
    """300 hashes go out in several requests, each URL short, and come back merged in order."""
    hashes = [f"h{i:011d}" for i in range(300)]

    def answer(request: httpx.Request) -> httpx.Response:
        asked = parse_qs(request.url.query.decode())["list"][0].split(",")
        body = {h: {"status": "done", "file": file_object(h)} for h in asked}
        return server(200, body)(request)

    route = router.get("/api/status").mock(side_effect=answer)
    info_route = router.get("/api/info").mock(
        side_effect=lambda r: server(
            200, {h: file_object(h) for h in parse_qs(r.url.query.decode())["list"][0].split(",")}
        )(r)
    )
    statuses = await mc.status_many(hashes)
    infos = await mc.info_many(hashes)
    assert route.call_count > 1
    assert info_route.call_count == route.call_count
    assert list(statuses) == hashes
    assert all(s is not None and s.status is ProcessingStatus.DONE for s in statuses.values())
    assert all(isinstance(b, File) and b.hash == h for h, b in infos.items())
    for call in route.calls:
        assert len(str(call.request.url)) < MAX_URL_LENGTH


async def test_url_info(router, mc):
    """url_info() posts the list and maps known URLs to files, others to None."""
    known, unknown = "http://i.imgur.com/rctIj1M.jpg", "http://does.not/exist.gif"
    route = router.post("/api/url/info").mock(
        side_effect=server(200, {known: file_object(), unknown: None})
    )
    result = await mc.url_info([known, unknown])
    assert isinstance(result[known], File)
    assert result[unknown] is None
    assert parse_qs(route.calls[0].request.content.decode())["list"] == [f"{known},{unknown}"]


async def test_status_album_is_unsupported(router, mc):
    """The status of an album is refused by the server with 415: UnsupportedMediaError."""
    router.get(f"/api/{ALBUM}/status").mock(side_effect=server(415, {"error": 415}))
    with pytest.raises(UnsupportedMediaError):
        await mc.status(ALBUM)


async def test_flags_get_and_set(router, mc):
    """get_flags() reads the mapping; set_flags() posts exactly "true"/"false" and returns all flags."""
    router.get(f"/api/{H}/flags").mock(
        side_effect=server(200, {"flags": {"autoplay": True, "nsfw": False}})
    )
    post = router.post(f"/api/{H}/flags").mock(
        side_effect=server(200, {"flags": {"autoplay": False, "nsfw": True}})
    )
    assert await mc.get_flags(H) == {"autoplay": True, "nsfw": False}
    assert await mc.set_flags(H, autoplay=False, nsfw=True) == {"autoplay": False, "nsfw": True}
    assert post.calls[0].request.content == b"autoplay=false&nsfw=true"


async def test_set_flags_not_owner(router, mc):
    """Another address changing flags gets 401: NotOwnerError."""
    router.post(f"/api/{H}/flags").mock(side_effect=server(401, {"error": 401}))
    with pytest.raises(NotOwnerError):
        await mc.set_flags(H, nsfw=True)


async def test_delete_success_and_not_owner(router, mc):
    """delete() returns None on 200 and raises NotOwnerError on 401."""
    router.delete(f"/api/{H}").mock(side_effect=server(200, {"status": "success"}))
    router.delete(f"/api/{H2}").mock(side_effect=server(401, {"error": 401}))
    assert await mc.delete(H) is None
    with pytest.raises(NotOwnerError):
        await mc.delete(H2)


async def test_delete_retried_into_404_is_success(router, mc, clock):
    """A delete whose first attempt got a 503 and whose retry meets 404 is a success (it was deleted)."""
    route = router.delete(f"/api/{H}").mock(
        side_effect=sequence(server(503, "<html>busy</html>"), server(404, {"error": 404}))
    )
    async with clock.autoadvance():
        assert await mc.delete(H) is None
    assert route.call_count == 2


async def test_delete_unknown_hash_raises(router, mc):
    """A first-attempt 404 on delete is NotFoundError."""
    router.delete(f"/api/{H}").mock(side_effect=server(404, {"error": 404}))
    with pytest.raises(NotFoundError):
        await mc.delete(H)


async def test_create_album(router, mc):
    """create_album() posts the comma list and returns the album hash."""
    route = router.post("/api/album/create").mock(side_effect=server(200, {"hash": ALBUM}))
    assert await mc.create_album([H, H2, H]) == ALBUM
    assert parse_qs(route.calls[0].request.content.decode())["list"] == [f"{H},{H2},{H}"]


@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFoundError), (413, TooLargeError), (415, UnsupportedMediaError)]
)
async def test_create_album_errors(router, mc, status, error):
    """Album errors map by status: unknown item 404, too many 413, an album inside 415."""
    router.post("/api/album/create").mock(side_effect=server(status, {"error": status}))
    with pytest.raises(error):
        await mc.create_album([H])


async def test_create_album_not_retried_after_a_500(router, mc):
    """create_album is not idempotent: a 500 is not retried."""
    route = router.post("/api/album/create").mock(side_effect=server(500, "<html>x</html>"))
    with pytest.raises(ServerError):
        await mc.create_album([H])
    assert route.call_count == 1


async def test_create_album_read_error_surfaces_as_sent(router, mc):
    """A read failure on create_album is not retried and reports request_sent=True."""
    route = router.post("/api/album/create").mock(side_effect=httpx.ReadError("reset"))
    with pytest.raises(TransportError) as caught:
        await mc.create_album([H])
    assert caught.value.request_sent is True
    assert route.call_count == 1


async def test_connect_errors_are_retried_then_raised(router, mc, clock):
    """Connection failures are retried with backoff, then raised with request_sent=False."""
    route = router.get(f"/api/{H}").mock(side_effect=httpx.ConnectError("refused"))
    async with clock.autoadvance():
        with pytest.raises(TransportError) as caught:
            await mc.info(H)
    assert caught.value.request_sent is False
    assert route.call_count == 5


# ---------------------------------------------------------------- bad input, before any request


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda mc: mc.info("bad"), "hash"),
        (lambda mc: mc.info_many([]), "hashes"),
        (lambda mc: mc.status_many("LxqXxVPAvqqB"), "hashes"),
        (lambda mc: mc.url_info(["not a url"]), "urls[0]"),
        (lambda mc: mc.upload_url("not a url"), "url"),
        (lambda mc: mc.upload_url("ftp://x.org/a.gif"), "url"),
        (lambda mc: mc.set_flags(H, sparkle=True), "sparkle"),
        (lambda mc: mc.set_flags(H), "flags"),
        (lambda mc: mc.create_album([H] * 1025), "hashes"),
        (lambda mc: mc.create_album([]), "hashes"),
        (lambda mc: mc.upload_file("/nonexistent/cat.gif"), "file"),
        (lambda mc: mc.upload_file(io.StringIO("text")), "file"),
        (lambda mc: mc.upload_file(b"x", filename=""), "filename"),
        (lambda mc: mc.wait(H, poll_interval=0), "poll_interval"),
        (lambda mc: mc.wait(H, timeout=-1), "timeout"),
        (lambda mc: mc.download(42, "out"), "file_entry_or_url"),
        (lambda mc: mc.download("http://cdn.example.org/a.mp4", "out"), "file_entry_or_url"),
    ],
    ids=[
        "info-bad-hash",
        "info_many-empty",
        "status_many-single-string",
        "url_info-non-url",
        "upload_url-non-url",
        "upload_url-ftp",
        "set_flags-unknown",
        "set_flags-none",
        "album-1025",
        "album-empty",
        "upload-missing-path",
        "upload-text-stream",
        "upload-empty-filename",
        "wait-zero-interval",
        "wait-negative-timeout",
        "download-not-a-target",
        "download-remote-http",
    ],
)
async def test_bad_input_fails_before_any_request(router, mc, call, field):
    """Bad input raises InvalidArgumentError naming the field; the router (no routes) saw no request."""
    with pytest.raises(InvalidArgumentError) as caught:
        await call(mc)
    assert caught.value.field == field
    assert router.calls.call_count == 0


async def test_unknown_flag_error_lists_allowed_flags(router, mc):
    """The unknown-flag message lists every allowed flag."""
    with pytest.raises(ValueError, match="autoplay, loop, mute, nsfw"):
        await mc.set_flags(H, Autoplay=True)


async def test_directory_is_not_a_file(router, mc, tmp_path):
    """A directory path is refused as unreadable before any request."""
    with pytest.raises(InvalidArgumentError, match="file"):
        await mc.upload_file(tmp_path)
    assert router.calls.call_count == 0


# ---------------------------------------------------------------- uploads


def multipart_file(request: httpx.Request) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of the single `file` part of a multipart request."""
    boundary = request.headers["Content-Type"].split("boundary=", 1)[1].encode()
    body = request.content
    assert int(request.headers["Content-Length"]) == len(body)
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    head, _, rest = body.partition(b"\r\n\r\n")
    data = rest[: -len(b"\r\n--" + boundary + b"--\r\n")]
    lines = head.decode().split("\r\n")
    disposition = next(line for line in lines if line.startswith("Content-Disposition"))
    assert 'name="file"' in disposition
    filename = disposition.split('filename="', 1)[1].rstrip('"')
    content_type = next(line for line in lines if line.startswith("Content-Type")).split(": ", 1)[1]
    return filename, content_type, data


async def test_upload_skips_a_file_the_server_has(router, mc):
    """With skip_existing, a file whose content hash exists is not sent again."""
    data = b"GIF89a-cat"
    router.get(f"/api/{content_hash(data)}/exists").mock(side_effect=server(200, {"exists": True}))
    upload = router.post("/api/upload/file")
    result = await mc.upload_file(data, filename="cat.gif")
    assert (result.hash, result.already_uploaded, result.file) == (content_hash(data), True, None)
    assert upload.call_count == 0


async def test_upload_streams_a_multipart_body(router, mc, tmp_path):
    """A path is uploaded as one multipart `file` part with its name, type and bytes, and progress reaches the total."""
    data = bytes(range(256)) * 4000
    path = tmp_path / "cat.gif"
    path.write_bytes(data)
    cid = content_hash(data)
    router.get(f"/api/{cid}/exists").mock(side_effect=server(404, {"exists": False}))
    upload = router.post("/api/upload/file").mock(side_effect=server(200, {"hash": cid}))
    seen: list[tuple[int, int]] = []
    result = await mc.upload_file(path, progress=lambda done, total: seen.append((done, total)))
    assert (result.hash, result.already_uploaded, result.file) == (cid, False, None)
    filename, content_type, body = multipart_file(upload.calls[0].request)
    assert (filename, content_type, body) == ("cat.gif", "image/gif", data)
    assert seen[0] == (0, len(data))
    assert seen[-1] == (len(data), len(data))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


async def test_upload_409_is_already_uploaded(router, mc):
    """A 409 reply is a success with already_uploaded=True and the server's object."""
    data = b"duplicate bytes"
    cid = content_hash(data)
    router.post("/api/upload/file").mock(
        side_effect=server(409, {"error": 409, "hash": cid, cid: file_object(cid)})
    )
    result = await mc.upload_file(data, skip_existing=False)
    assert result.already_uploaded is True
    assert isinstance(result.file, File)
    assert result.file.hash == cid


async def test_upload_409_issue_356_form(router, mc):
    """A 409 whose object is `[{"error": 404}, 404]` gives already_uploaded=True and file=None."""
    data = b"failed before"
    cid = content_hash(data)
    router.post("/api/upload/file").mock(
        side_effect=server(409, {"error": 409, "hash": cid, cid: [{"error": 404}, 404]})
    )
    result = await mc.upload_file(data, skip_existing=False)
    assert (result.hash, result.already_uploaded, result.file) == (cid, True, None)


async def test_upload_html_413_from_nginx(router, mc):
    """nginx's HTML 413 page for a too-large body raises TooLargeError."""
    router.post("/api/upload/file").mock(
        side_effect=server(
            413, "<html><center><h1>413 Request Entity Too Large</h1></center></html>"
        )
    )
    with pytest.raises(TooLargeError, match="413"):
        await mc.upload_file(b"big", skip_existing=False)


class RecordingFile(io.RawIOBase):
    """A seekable binary file that records the size of every read."""

    def __init__(self, size: int) -> None:
        self._data = bytes(i % 251 for i in range(size))
        self._pos = 0
        self.reads: list[int] = []
        self.name = "movie.mp4"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk

    @property
    def data(self) -> bytes:
        return self._data


async def test_upload_reads_in_chunks_never_whole(router, mc):
    """A 3 MiB file object is hashed and streamed in chunks: no read asks for everything or more than a chunk."""
    source = RecordingFile(3 * 1024 * 1024 + 17)
    cid = content_hash(source.data)
    router.get(f"/api/{cid}/exists").mock(side_effect=server(404, {"exists": False}))
    upload = router.post("/api/upload/file").mock(side_effect=server(200, {"hash": cid}))
    result = await mc.upload_file(source)
    assert result.hash == cid
    assert source.reads
    assert all(0 < size <= CHUNK_SIZE for size in source.reads)
    filename, content_type, body = multipart_file(upload.calls[0].request)
    assert (filename, content_type) == ("movie.mp4", "video/mp4")
    assert body == source.data
    assert not source.closed


async def test_upload_non_seekable_stream_is_spooled(router, mc):
    """A non-seekable stream is spooled once, so its size is known and a retry can resend it."""

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    data = b"streamed" * 10_000
    upload = router.post("/api/upload/file").mock(
        side_effect=server(200, {"hash": content_hash(data)})
    )
    result = await mc.upload_file(Pipe(data), filename="clip.webm", skip_existing=False)
    assert result.hash == content_hash(data)
    assert multipart_file(upload.calls[0].request) == ("clip.webm", "video/webm", data)


async def test_upload_url(router, mc):
    """upload_url() posts `url=` and returns the hash; 400/404 map to InvalidURLError/NotFoundError."""
    route = router.post("/api/upload/url").mock(
        side_effect=sequence(
            server(200, {"hash": H}),
            server(400, {"error": 400}),
            server(404, {"error": 404}),
        )
    )
    result = await mc.upload_url("https://example.org/cat.gif")
    assert (result.hash, result.already_uploaded) == (H, False)
    assert parse_qs(route.calls[0].request.content.decode()) == {
        "url": ["https://example.org/cat.gif"]
    }
    with pytest.raises(InvalidURLError):
        await mc.upload_url("https://example.org/nope")
    with pytest.raises(NotFoundError):
        await mc.upload_url("https://example.org/missing")


async def test_upload_url_409(router, mc):
    """A URL upload of known bytes answers 409: already_uploaded with the object."""
    router.post("/api/upload/url").mock(
        side_effect=server(409, {"error": 409, "hash": H, H: file_object()})
    )
    result = await mc.upload_url("https://example.org/cat.gif")
    assert result.already_uploaded is True
    assert result.file is not None


# ---------------------------------------------------------------- 420 and the byte budget


async def test_420_pauses_uploads_then_recovers(router, http, clock, cors):
    """A 420 is not retried at once: uploads pause for the budget period, then the upload goes through."""
    times: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        times.append(clock.monotonic())
        status, body = (
            (420, {"error": 420}) if len(times) == 1 else (200, {"hash": content_hash(b"x" * 10)})
        )
        return server(status, body)(request)

    route = router.post("/api/upload/file").mock(side_effect=answer)
    budget = ByteBudget(max_bytes=None, period=100.0)
    async with (
        MediaCrushClient(cors_status=cors, http_client=http, clock=clock, byte_budget=budget) as mc,
        clock.autoadvance(),
    ):
        result = await mc.upload_file(b"x" * 10, skip_existing=False)
    assert result.hash == content_hash(b"x" * 10)
    assert route.call_count == 2
    assert times[1] - times[0] >= 100.0


async def test_420_after_all_retries_raises_with_retry_after(router, http, clock):
    """When every attempt meets 420, RateLimitedError is raised with the pause left."""
    route = router.post("/api/upload/url").mock(side_effect=server(420, {"error": 420}))
    async with (
        MediaCrushClient(http_client=http, clock=clock, max_retries=2) as mc,
        clock.autoadvance(),
    ):
        with pytest.raises(RateLimitedError) as caught:
            await mc.upload_url("https://example.org/a.gif")
    assert route.call_count == 3
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0


async def test_budget_paces_uploads_into_the_next_window(router, http, clock):
    """With a 1000-byte budget, a second 600-byte upload waits until the first window (stamped at completion) ends."""
    times: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        times.append(clock.monotonic())
        _, _, data = multipart_file(request)
        return server(200, {"hash": content_hash(data)})(request)

    router.post("/api/upload/file").mock(side_effect=answer)
    budget = ByteBudget(max_bytes=1000, period=50.0)
    async with (
        MediaCrushClient(http_client=http, clock=clock, byte_budget=budget) as mc,
        clock.autoadvance(),
    ):
        await mc.upload_file(b"a" * 300, skip_existing=False)
        await mc.upload_file(b"b" * 300, skip_existing=False)
        await mc.upload_file(b"c" * 600, skip_existing=False)
    assert times[1] == times[0]
    assert times[2] >= times[0] + 50.0


async def test_budget_refuses_a_file_larger_than_a_window(router, http, clock):
    """A file that alone reaches the budget can never be accepted: a clear error before any request."""
    budget = ByteBudget(max_bytes=100, period=50.0)
    async with MediaCrushClient(http_client=http, clock=clock, byte_budget=budget) as mc:
        with pytest.raises(InvalidArgumentError, match=r"ByteBudget\.max_bytes"):
            await mc.upload_file(b"z" * 100)
    assert router.calls.call_count == 0


async def test_other_calls_are_not_paced(router, http, clock):
    """Reads are not limited by the upload budget, even while uploads are paused."""
    router.post("/api/upload/url").mock(side_effect=server(420, {"error": 420}))
    router.get(f"/api/{H}/exists").mock(side_effect=server(200, {"exists": True}))
    async with MediaCrushClient(http_client=http, clock=clock, max_retries=0) as mc:
        with pytest.raises(RateLimitedError):
            await mc.upload_url("https://example.org/a.gif")
        before = clock.monotonic()
        assert await mc.exists(H) is True
        assert clock.monotonic() == before


# ---------------------------------------------------------------- wait


async def test_wait_polls_through_ready_until_done(router, mc, clock):
    """wait() keeps polling through pending, processing and ready, and returns the done Status."""
    route = router.get(f"/api/{H}/status").mock(
        side_effect=sequence(
            server(200, {"status": "pending"}),
            server(
                200,
                {"status": "processing", "hash": H, H: file_object(blob_type=None, metadata={})},
            ),
            server(200, {"status": "ready", "hash": H, H: file_object()}),
            server(200, {"status": "done", "hash": H, H: file_object()}),
        )
    )
    seen: list[ProcessingStatus] = []
    async with clock.autoadvance():
        status = await mc.wait(H, poll_interval=2.0, on_status=lambda s: seen.append(s.status))
    assert isinstance(status, Status)
    assert status.status is ProcessingStatus.DONE
    assert status.file is not None
    assert route.call_count == 4
    assert seen == [
        ProcessingStatus.PENDING,
        ProcessingStatus.PROCESSING,
        ProcessingStatus.READY,
        ProcessingStatus.DONE,
    ]
    assert clock.slept == [2.0, 2.0, 2.0]


async def test_wait_returns_a_failure_status(router, mc, clock):
    """A failure is terminal: wait() returns it for the caller to check (internal_error is retryable)."""
    router.get(f"/api/{H}/status").mock(side_effect=server(200, {"status": "internal_error"}))
    status = await mc.wait(H)
    assert status.status is ProcessingStatus.INTERNAL_ERROR
    assert status.status.is_retryable


async def test_wait_times_out(router, mc, clock):
    """wait() raises WaitTimeoutError (also a TimeoutError) with the last status once `timeout` passes."""
    router.get(f"/api/{H}/status").mock(side_effect=server(200, {"status": "processing"}))
    async with clock.autoadvance():
        with pytest.raises(TimeoutError) as caught:
            await mc.wait(H, poll_interval=1.0, timeout=5.0)
    assert isinstance(caught.value, WaitTimeoutError)
    assert caught.value.last_status == "processing"
    assert clock.monotonic() >= 1005.0


# ---------------------------------------------------------------- download


class _Body(httpx.AsyncByteStream):
    """A streamed body (httpx reads `content=` bodies at once, which a streaming downloader cannot re-read)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self):
        yield self._data


def stored(
    status: int, data: bytes, content_type: str = "application/octet-stream"
) -> httpx.Response:
    """A streamed reply with a Content-Length, as a file server sends it."""
    headers = {"Content-Type": content_type, "Content-Length": str(len(data))}
    return httpx.Response(status, headers=headers, stream=_Body(data))


@pytest.fixture
async def files_client(clock):
    """A client whose transport serves stored files (respx reads mock bodies early; downloads stream)."""
    served: dict[str, httpx.Response] = {}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        make = served.get(str(request.url))
        return make if make is not None else stored(404, b"<html>Not Found</html>", "text/html")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with MediaCrushClient(BASE, http_client=http, clock=clock) as client:
        yield client, served, seen
    await http.aclose()


async def test_download_a_file_entry(files_client, tmp_path):
    """A FileEntry is fetched from its CDN url into the directory, named after the file."""
    mc, served, _ = files_client
    data = b"\x00mp4" * 1000
    url = f"https://cdn.mediacru.sh/{H}.mp4"
    served[url] = stored(200, data, "video/mp4")
    entry = FileEntry(file=f"/{H}.mp4", url=url, type="video/mp4")
    seen: list[tuple[int, int | None]] = []
    path = await mc.download(entry, tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert path == tmp_path / f"{H}.mp4"
    assert path.read_bytes() == data
    assert seen[-1] == (len(data), len(data))


async def test_download_entry_without_url_uses_the_base_url(files_client, tmp_path):
    """An entry without `url` (old replies, album items) is fetched from the server by its path."""
    mc, served, seen = files_client
    served[f"{BASE}/{H}.jpe"] = stored(200, b"jpeg", "image/jpeg")
    path = await mc.download(FileEntry(file=f"/{H}.jpe"), tmp_path / "cat.jpg")
    assert path.read_bytes() == b"jpeg"
    assert [str(r.url) for r in seen] == [f"{BASE}/{H}.jpe"]


async def test_download_of_a_missing_file_is_not_found(files_client, tmp_path):
    """A listed file that does not exist (yet) answers 404: NotFoundError, and no final file appears."""
    mc, _, _ = files_client
    with pytest.raises(NotFoundError) as caught:
        await mc.download(f"{BASE}/{H}.ogv", tmp_path)
    assert caught.value.route == "download"
    assert not (tmp_path / f"{H}.ogv").exists()


# ---------------------------------------------------------------- both modes agree


async def test_both_status_modes_give_identical_results(router, http, clock):
    """The same server replies give equal results and equal exceptions with and without X-CORS-Status."""
    router.get(f"/api/{H}").mock(side_effect=server(200, file_object()))
    router.get(f"/api/{H2}").mock(side_effect=server(404, {"error": 404}))
    router.get(f"/api/{H}/status").mock(
        side_effect=server(200, {"status": "done", "hash": H, H: file_object()})
    )
    router.get(f"/api/{H2}/exists").mock(side_effect=server(404, {"exists": False}))
    router.post(f"/api/{H}/flags").mock(side_effect=server(415, {"error": 415}))
    router.post("/api/upload/url").mock(
        side_effect=server(409, {"error": 409, "hash": H, H: [{"error": 404}, 404]})
    )

    async def run(cors: bool) -> list[object]:
        out: list[object] = []
        async with MediaCrushClient(cors_status=cors, http_client=http, clock=clock) as mc:
            out.append(await mc.info(H))
            out.append(await mc.status(H))
            out.append(await mc.exists(H2))
            out.append(await mc.upload_url("https://example.org/a"))
            for call in (lambda: mc.info(H2), lambda: mc.set_flags(H, nsfw=True)):
                try:
                    await call()
                except Exception as exc:
                    out.append((type(exc), exc.status_code, exc.error))  # type: ignore[attr-defined]
        return out

    plain = await run(cors=False)
    wrapped = await run(cors=True)
    assert plain == wrapped
    headers = [c.request.headers.get("X-CORS-Status") for c in router.calls]
    assert headers[: len(headers) // 2] == [None] * (len(headers) // 2)
    assert headers[len(headers) // 2 :] == ["1"] * (len(headers) // 2)


def test_json_helper_sanity():
    """The test server helper wraps JSON bodies only in CORS mode."""
    plain = server(404, {"error": 404})(httpx.Request("GET", BASE))
    wrapped = server(404, {"error": 404})(
        httpx.Request("GET", BASE, headers={"X-CORS-Status": "1"})
    )
    assert (plain.status_code, wrapped.status_code) == (404, 200)
    assert json.loads(wrapped.content)["x-status"] == 404
