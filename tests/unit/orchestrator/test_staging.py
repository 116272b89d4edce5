"""The local file server: unguessable URLs, Range and If-Range, an access log per token."""

from __future__ import annotations

import anyio
import httpx
import pytest

from orchestrator._staging import LocalFileServer, is_url

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


def test_urls_pass_through():
    """http(s) inputs are URLs; everything else is a local path."""
    assert is_url("https://example.org/a.mov")
    assert is_url("HTTP://example.org/a.mov")
    assert not is_url("relative/a.mov")
    assert not is_url("ftp://example.org/a.mov")


async def test_the_fetch_hook_holds_a_fetch_and_may_refuse_it(media):
    """The hook runs before any byte is served: a held GET waits for it; a refused one, or one whose
    token was unstaged while it waited, is answered 404 with nothing sent (the upload seal)."""
    release = anyio.Event()
    both_asked = anyio.Event()
    verdicts = {"held": True, "refused": False}
    asked: list[str] = []
    async with LocalFileServer() as server, httpx.AsyncClient() as http:
        held = await server.stage(media)
        refused = await server.stage(media)
        dropped = await server.stage(media)
        names = {held.token: "held", refused.token: "refused", dropped.token: "dropped"}

        async def hook(token: str) -> bool:
            asked.append(names[token])
            if len(asked) == 2:
                both_asked.set()
            if names[token] != "refused":
                await release.wait()
            return verdicts.get(names[token], True)

        server.set_fetch_hook(hook)
        results: dict[str, httpx.Response] = {}

        async def get(name: str, url: str) -> None:
            results[name] = await http.get(url)

        async with anyio.create_task_group() as tg:
            tg.start_soon(get, "held", held.source)
            tg.start_soon(get, "dropped", dropped.source)
            await both_asked.wait()
            assert results == {}  # both wait for the hook
            assert dropped.token is not None
            await server.unstage(dropped.token)
            release.set()
        results["refused"] = await http.get(refused.source)
        assert results["held"].status_code == 200
        assert results["held"].content == DATA
        for name in ("refused", "dropped"):
            assert results[name].status_code == 404
            assert DATA not in results[name].content
        assert held.token is not None
        assert refused.token is not None
        assert server.fetches(held.token) == 1
        assert server.fetches(refused.token) == 0
