"""The local file server: unguessable URLs, Range and If-Range, an access log per token."""

from __future__ import annotations

import httpx
import pytest

from orchestrator._staging import LocalFileServer, _parse_range, is_url

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def media(tmp_path):
    path = tmp_path / "reel one.mov"
    path.write_bytes(DATA)
    return path


async def test_serves_a_staged_file_with_ranges(media):
    """Full GET, HEAD, a range, a suffix range and an unsatisfiable range behave as RFC 9110 says."""
    async with LocalFileServer() as server, httpx.AsyncClient() as http:
        staged = await server.stage(media)
        assert staged.source.startswith(server.url + "/s/")
        assert staged.source.endswith("/reel%20one.mov")
        assert len(staged.token or "") >= 32
        full = await http.get(staged.source)
        assert full.status_code == 200
        assert full.content == DATA
        assert full.headers["accept-ranges"] == "bytes"
        head = await http.head(staged.source)
        assert head.headers["content-length"] == str(len(DATA))
        assert head.content == b""
        part = await http.get(staged.source, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(DATA)}"
        assert part.content == DATA[100:200]
        tail = await http.get(staged.source, headers={"Range": "bytes=-10"})
        assert tail.content == DATA[-10:]
        beyond = await http.get(staged.source, headers={"Range": f"bytes={len(DATA)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(DATA)}"


async def test_if_range_with_a_stale_validator_gets_the_whole_file(media):
    """If-Range with a matching ETag gives the range; a stale one gives 200 and everything."""
    async with LocalFileServer() as server, httpx.AsyncClient() as http:
        staged = await server.stage(media)
        etag = (await http.head(staged.source)).headers["etag"]
        fresh = await http.get(staged.source, headers={"Range": "bytes=10-", "If-Range": etag})
        assert fresh.status_code == 206
        stale = await http.get(staged.source, headers={"Range": "bytes=10-", "If-Range": '"old"'})
        assert stale.status_code == 200
        assert stale.content == DATA


async def test_unknown_tokens_and_paths_are_404(media):
    """Only staged tokens are served; unstaging stops serving."""
    async with LocalFileServer() as server, httpx.AsyncClient() as http:
        staged = await server.stage(media)
        assert (await http.get(server.url + "/s/guess/reel.mov")).status_code == 404
        assert (await http.get(server.url + "/other")).status_code == 404
        assert (await http.post(staged.source)).status_code == 405
        assert staged.token is not None
        await server.unstage(staged.token)
        assert (await http.get(staged.source)).status_code == 404


async def test_access_log_is_the_fetch_evidence(media):
    """Each request is logged under its token; fetches count complete or partial GETs."""
    seen = []
    async with LocalFileServer(on_access=seen.append) as server, httpx.AsyncClient() as http:
        staged = await server.stage(media)
        assert staged.token is not None
        assert server.fetches(staged.token) == 0
        await http.head(staged.source)
        assert server.fetches(staged.token) == 0
        await http.get(staged.source, headers={"Range": "bytes=0-9"})
        await http.get(staged.source)
        assert server.fetches(staged.token) == 2
        log = server.access_log(staged.token)
    assert [r.status for r in log] == [200, 206, 200]
    assert [r.bytes_sent for r in log] == [0, 10, len(DATA)]
    assert log[1].range == "bytes=0-9"
    assert len(seen) == 3


async def test_restaging_with_a_token_keeps_the_url(media):
    """After a restart, an item's earlier token serves the same URL path again."""
    async with LocalFileServer() as server:
        first = await server.stage(media)
    async with LocalFileServer() as server, httpx.AsyncClient() as http:
        again = await server.stage(media, token=first.token)
        assert again.token == first.token
        assert (await http.get(again.source)).content == DATA


async def test_mounted_apps_get_their_prefix_stripped(media):
    """A mounted ASGI app (the webhook receiver) sees paths below its prefix."""
    seen = []

    async def app(scope, receive, send):
        seen.append((scope["path"], scope["root_path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with LocalFileServer(public_url="http://public.example/base/") as server:
        assert server.url == "http://public.example/base"
        assert server.mount("hooks", app) == "http://public.example/base/hooks"
        with pytest.raises(ValueError, match="mount prefix"):
            server.mount("s", app)
    async with LocalFileServer() as server, httpx.AsyncClient() as http:
        server.mount("/hooks/", app)
        response = await http.post(server.url + "/hooks/tok/x")
    assert response.status_code == 204
    assert seen == [("/tok/x", "/hooks")]


async def test_staging_a_missing_file_fails_clearly(tmp_path):
    """A path that is not a file raises FileNotFoundError naming it."""
    async with LocalFileServer() as server:
        with pytest.raises(FileNotFoundError, match=r"absent\.mov"):
            await server.stage(tmp_path / "absent.mov")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=100-", None),
        ("bytes=9-3", None),
        ("bytes=-0", None),
        ("bytes=0-1,5-6", "whole"),
        ("items=0-1", "whole"),
    ],
)
def test_range_parsing(header, expected):
    """Single ranges are clipped, unsatisfiable ones refused, anything else is the whole file."""
    assert _parse_range(header, 100) == expected


def test_urls_pass_through():
    """http(s) inputs are URLs; everything else is a local path."""
    assert is_url("https://example.org/a.mov")
    assert is_url("HTTP://example.org/a.mov")
    assert not is_url("relative/a.mov")
    assert not is_url("ftp://example.org/a.mov")
