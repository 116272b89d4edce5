"""`download_file` against a real loopback HTTP server (tests/rangeserver.py) that misbehaves on demand."""

from __future__ import annotations

import json
import random
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest
from rangeserver import RangeServer, RecordedRequest, serving

from _clientkit import _body
from _clientkit._auth import OriginAuth
from _clientkit._download import DownloadOptions, download_file
from _clientkit._failures import DownloadFailure, HTTPStatusFailure, TransportFailure
from _clientkit._redact import Secret

CONTENT = random.Random(7).randbytes(1_000_003)
NEW_CONTENT = random.Random(8).randbytes(900_001)


class InstantClock:
    """A Clock that records every requested sleep and returns at once."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return sum(self.slept)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await anyio.lowlevel.checkpoint()


class Crash(Exception):
    """Raised from a progress callback to stop a download the way a killed process would."""


def options(**overrides: object) -> DownloadOptions:
    settings: dict[str, object] = {"backoff_base": 0.0, "chunk_size": 64 * 1024}
    settings.update(overrides)
    return DownloadOptions(**settings)  # type: ignore[arg-type]


@pytest.fixture(params=[True, False], ids=["direct", "aiter_raw"])
def direct_read(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def ranges(server: RangeServer) -> list[str | None]:
    return [r.headers.get("range") for r in server.requests]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_downloads_to_a_file_path(tmp_path):
    """A plain download lands at `dest` with identical bytes and leaves no .part or sidecar."""
    server = RangeServer(content=CONTENT)
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path / "out.bin", options=options())
    assert path == tmp_path / "out.bin"
    assert path.read_bytes() == CONTENT
    assert leftovers(tmp_path) == ["out.bin"]
    assert server.requests[0].headers["accept-encoding"] == "identity"


async def test_empty_file(tmp_path):
    """A zero-byte file downloads to an empty file."""
    server = RangeServer(content=b"")
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path / "empty", options=options())
    assert path.read_bytes() == b""


async def test_drop_mid_body_resumes_from_bytes_on_disk(tmp_path, direct_read):
    """After a connection cut at byte N the retry asks for `bytes=N-` with If-Range and appends."""
    server = RangeServer(content=CONTENT, drops=[300_000])
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client, f"{base}/file", tmp_path / "out", options=options(direct_read=direct_read)
        )
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=300000-"]
    assert server.requests[1].headers["if-range"] == '"v1"'
    assert server.bytes_sent == len(CONTENT)


async def test_part_from_an_earlier_call_is_resumed(tmp_path):
    """A `.part` left by a failed call is resumed by the next call from its size, not from zero."""
    server = RangeServer(content=CONTENT, drops=[400_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure) as caught:
            await download_file(client, f"{base}/file", dest, options=options(max_retries=0))
        assert caught.value.request_sent is True
        assert (tmp_path / "out.part").stat().st_size == 400_000
        assert (tmp_path / "out.part.json").exists()
        path = await download_file(client, f"{base}/file", dest, options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=400000-"]
    assert leftovers(tmp_path) == ["out"]


async def test_resume_false_starts_over(tmp_path):
    """`resume=False` ignores an existing `.part` and downloads from byte 0."""
    server = RangeServer(content=CONTENT, drops=[400_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/file", dest, options=options(max_retries=0))
        path = await download_file(client, f"{base}/file", dest, resume=False, options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, None]


async def test_if_range_mismatch_restarts_with_the_new_file(tmp_path):
    """When the remote file changed, If-Range yields a 200 and the result is the new file only."""
    server = RangeServer(content=CONTENT, drops=[500_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/file", dest, options=options(max_retries=0))
        server.replace_content(NEW_CONTENT, '"v2"')
        path = await download_file(client, f"{base}/file", dest, options=options())
    assert path.read_bytes() == NEW_CONTENT
    assert server.requests[1].headers["if-range"] == '"v1"'


async def test_200_to_a_range_request_truncates_and_starts_over(tmp_path):
    """A server that ignores Range (200) makes the download start over, never append."""
    server = RangeServer(content=CONTENT, drops=[250_000], ignore_range=True)
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=250000-"]


async def test_416_with_the_whole_file_on_disk_completes(tmp_path):
    """A complete `.part` (crash before the rename) is finished by a 416 whose total equals its size."""
    server = RangeServer(content=CONTENT)
    dest = tmp_path / "out"
    calls: list[tuple[int, int | None]] = []

    def crash_at_end(done: int, total: int | None) -> None:
        if done == total:
            raise Crash

    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(Crash):
            await download_file(client, f"{base}/file", dest, progress=crash_at_end)
        assert (tmp_path / "out.part").stat().st_size == len(CONTENT)
        path = await download_file(
            client,
            f"{base}/file",
            dest,
            progress=lambda d, t: calls.append((d, t)),
            options=options(),
        )
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, f"bytes={len(CONTENT)}-"]
    assert calls[-1] == (len(CONTENT), len(CONTENT))
    assert server.bytes_sent == len(CONTENT)


async def test_416_with_another_size_starts_over(tmp_path):
    """A 416 whose total differs from the bytes on disk makes the download start over from zero."""
    server = RangeServer(content=CONTENT, drops=[300_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/file", dest, options=options(max_retries=0))
        server.force_416 = True
        path = await download_file(client, f"{base}/file", dest, options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=300000-", None]


async def test_total_mismatch_fails_and_keeps_the_part(tmp_path):
    """A 206 whose Content-Range total disagrees with the known size fails with the `.part` kept."""
    server = RangeServer(content=CONTENT, drops=[300_000], claimed_total=len(CONTENT) + 10)
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="total") as caught:
            await download_file(client, f"{base}/file", dest, options=options())
    assert caught.value.part_path == str(tmp_path / "out.part")
    assert (tmp_path / "out.part").read_bytes() == CONTENT[:300_000]
    assert not dest.exists()


async def test_wrong_content_range_start_fails_and_keeps_the_part(tmp_path):
    """A 206 that starts elsewhere than the requested offset fails with the `.part` kept."""
    server = RangeServer(content=CONTENT, drops=[300_000], range_start_shift=10)
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="starts at byte 300010"):
            await download_file(client, f"{base}/file", dest, options=options())
    assert (tmp_path / "out.part").read_bytes() == CONTENT[:300_000]
    assert not dest.exists()


async def test_content_encoding_on_a_206_is_refused(tmp_path):
    """A 206 with `Content-Encoding: gzip` is refused, since its offsets are not file offsets."""
    server = RangeServer(content=CONTENT, drops=[300_000], content_encoding_206="gzip")
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="Content-Encoding"):
            await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    assert (tmp_path / "out.part").stat().st_size == 300_000


async def test_weak_etag_is_never_sent_as_if_range(tmp_path):
    """With only a weak ETag the resume sends Range without If-Range and verifies by size."""
    server = RangeServer(content=CONTENT, drops=[300_000], etag='W/"v1"')
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=300000-"]
    assert "if-range" not in server.requests[1].headers


async def test_weak_etag_falls_back_to_an_old_last_modified(tmp_path):
    """With a weak ETag and a Last-Modified well before Date, the date is the If-Range validator."""
    modified = "Tue, 01 Jan 2019 00:00:00 GMT"
    server = RangeServer(content=CONTENT, drops=[300_000], etag='W/"v1"', last_modified=modified)
    async with serving(server) as base, httpx.AsyncClient() as client:
        await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    assert server.requests[1].headers["if-range"] == modified


async def test_retry_counter_resets_whenever_bytes_arrive(tmp_path, direct_read):
    """Eight cuts with max_retries=3 still succeed because every attempt makes progress."""
    server = RangeServer(content=CONTENT, drops=[100_000] * 8)
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client,
            f"{base}/file",
            tmp_path / "out",
            options=options(max_retries=3, direct_read=direct_read),
        )
    assert path.read_bytes() == CONTENT
    assert len(server.requests) == 9
    assert ranges(server)[1:] == [f"bytes={100_000 * k}-" for k in range(1, 9)]
    assert server.bytes_sent == len(CONTENT)


async def test_failures_without_progress_exhaust_the_retries(tmp_path):
    """Cuts before any body byte count as consecutive failures and end in TransportFailure."""
    server = RangeServer(content=CONTENT, drops=[0] * 10)
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure) as caught:
            await download_file(
                client, f"{base}/file", tmp_path / "out", options=options(max_retries=2)
            )
    assert caught.value.request_sent is True
    assert len(server.requests) == 3


async def test_connection_refused_is_a_never_sent_transport_failure(tmp_path):
    """A port nobody listens on fails after the retries with request_sent=False."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 (anyio, not Django)
    await listener.aclose()
    clock = InstantClock()
    async with httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure) as caught:
            await download_file(
                client,
                f"http://127.0.0.1:{port}/file",
                tmp_path / "out",
                options=DownloadOptions(max_retries=2),
                clock=clock,
            )
    assert caught.value.request_sent is False
    assert len(clock.slept) == 2
    assert leftovers(tmp_path) == []


async def test_503_is_retried_honouring_retry_after(tmp_path):
    """A 503 with Retry-After: 7 is retried after at least 7 seconds of (fake) sleep."""
    server = RangeServer(content=CONTENT, statuses=[503], retry_after="7")
    clock = InstantClock()
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path / "out", clock=clock)
    assert path.read_bytes() == CONTENT
    assert len(clock.slept) == 1
    assert clock.slept[0] >= 7


async def test_5xx_after_the_retries_is_an_http_status_failure(tmp_path):
    """Persistent 500s end in HTTPStatusFailure(500) after max_retries + 1 attempts."""
    server = RangeServer(content=CONTENT, statuses=[500] * 5)
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(HTTPStatusFailure) as caught:
            await download_file(
                client, f"{base}/file", tmp_path / "out", options=options(max_retries=2)
            )
    assert caught.value.status_code == 500
    assert len(server.requests) == 3


async def test_404_fails_at_once_with_an_excerpt(tmp_path):
    """A 404 is not retried; the failure carries the status and a body excerpt and no file is left."""
    server = RangeServer(content=CONTENT, statuses=[404])
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(HTTPStatusFailure) as caught:
            await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    assert caught.value.status_code == 404
    assert "status 404" in caught.value.body_excerpt
    assert isinstance(caught.value, DownloadFailure)
    assert leftovers(tmp_path) == []


async def test_progress_is_monotone_and_ends_at_the_total(tmp_path):
    """The progress callback never goes backwards (across a cut) and ends at (total, total)."""
    server = RangeServer(content=CONTENT, drops=[123_456])
    calls: list[tuple[int, int | None]] = []
    async with serving(server) as base, httpx.AsyncClient() as client:
        await download_file(
            client,
            f"{base}/file",
            tmp_path / "out",
            progress=lambda done, total: calls.append((done, total)),
            options=options(),
        )
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)
    assert calls[-1] == (len(CONTENT), len(CONTENT))
    assert {total for _, total in calls} == {len(CONTENT)}


# ------------------------------------------------------------------------ names and directories


async def test_directory_dest_uses_content_disposition(tmp_path):
    """With a directory as `dest` the file is named from Content-Disposition's filename*."""
    server = RangeServer(
        content=CONTENT,
        content_disposition="attachment; filename=\"fallback.bin\"; filename*=UTF-8''na%C3%AFve%20clip.mp4",
    )
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path, options=options())
    assert path == tmp_path / "naïve clip.mp4"
    assert path.read_bytes() == CONTENT
    assert leftovers(tmp_path) == ["naïve clip.mp4"]


async def test_script_url_without_disposition_gets_a_name_from_query_and_type(tmp_path):
    """`download.php?guid=abc` served as video/mp4 without Content-Disposition lands as `abc.mp4`."""
    server = RangeServer(content=CONTENT, content_type="video/mp4")
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/download.php?guid=abc", tmp_path)
    assert path == tmp_path / "abc.mp4"


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('attachment; filename="../../x"', "x"),
        ('attachment; filename="/etc/passwd"', "passwd"),
        ('attachment; filename=".."', "file"),
        ("attachment; filename*=UTF-8''..%2F..%2Fevil.sh", "evil.sh"),
        ("attachment; filename*=UTF-8''a%00b%0A.txt", "ab.txt"),
        ('attachment; filename="..\\\\..\\\\win.ini"', "win.ini"),
        ('attachment; filename=".hidden"', "hidden"),
    ],
)
async def test_hostile_content_disposition_stays_inside_dest(tmp_path, disposition, expected):
    """A hostile Content-Disposition name is reduced to a safe base name inside `dest`."""
    dest = tmp_path / "inbox"
    dest.mkdir()
    server = RangeServer(content=CONTENT, content_disposition=disposition)
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", dest, options=options())
    assert path == dest / expected
    assert leftovers(tmp_path) == ["inbox"]
    assert leftovers(dest) == [expected]


async def test_directory_resume_knows_the_name_before_the_first_request(tmp_path):
    """A rerun into a directory resumes the named `.part` with a Range on its very first request."""
    server = RangeServer(
        content=CONTENT, content_disposition='attachment; filename="movie.mp4"', drops=[350_000]
    )
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/file", tmp_path, options=options(max_retries=0))
        assert (tmp_path / "movie.mp4.part").stat().st_size == 350_000
        sidecars = [p for p in tmp_path.iterdir() if p.name.endswith(".part.json")]
        assert len(sidecars) == 1
        assert json.loads(sidecars[0].read_text())["name"] == "movie.mp4"
        server.content_disposition = None
        path = await download_file(client, f"{base}/file", tmp_path, options=options())
    assert path == tmp_path / "movie.mp4"
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=350000-"]
    assert leftovers(tmp_path) == ["movie.mp4"]


async def test_missing_parent_directory_is_a_clear_error(tmp_path):
    """A file `dest` whose parent does not exist raises ValueError naming `dest`, before any request."""
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="dest"):
            await download_file(client, "http://127.0.0.1:9/file", tmp_path / "no" / "out")


async def test_non_http_url_is_refused(tmp_path):
    """A non-http(s) URL raises ValueError naming `url`."""
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="url"):
            await download_file(client, "ftp://example.com/x", tmp_path / "x")


# ------------------------------------------------------------------------ credentials and redirects


async def test_redirect_to_another_origin_carries_no_credential(tmp_path, canary_secret):
    """Authorization reaches the API origin and its same-origin redirect, never the other origin."""
    cdn = RangeServer(content=CONTENT)
    api = RangeServer(content=b"unused", redirect_path="/go")
    async with serving(cdn) as cdn_url, serving(api) as api_url, httpx.AsyncClient() as client:
        api.redirect_to = f"{cdn_url}/file"
        auth = OriginAuth(api_url, Secret(f"Bearer {canary_secret}"))
        path = await download_file(
            client, f"{api_url}/go", tmp_path / "out", auth=auth, options=options()
        )
    assert path.read_bytes() == CONTENT
    assert api.requests[0].headers["authorization"] == f"Bearer {canary_secret}"
    assert "authorization" not in cdn.requests[0].headers


async def test_httpx_drops_authorization_on_a_redirect_to_another_origin(canary_secret):
    """The httpx in use strips Authorization from a cross-origin hop (OriginAuth relies on it)."""
    seen: dict[str, httpx.Headers] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] = request.headers
        if request.url.host == "api.example.com":
            return httpx.Response(302, headers={"Location": "https://cdn.example.com/file"})
        return httpx.Response(200, content=b"x")

    auth = OriginAuth("https://api.example.com", Secret(canary_secret))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await client.get("https://api.example.com/go", auth=auth, follow_redirects=True)
    assert response.status_code == 200
    assert seen["https://api.example.com/go"]["authorization"] == canary_secret
    assert "authorization" not in seen["https://cdn.example.com/file"]


async def test_a_redirect_to_another_scheme_is_refused_at_once(tmp_path):
    """A Location with a non-http scheme ends the download (DownloadFailure), without retries."""
    api = RangeServer(content=CONTENT, redirect_path="/go", redirect_to="ftp://127.0.0.1/file")
    async with serving(api) as api_url, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="unsupported scheme"):
            await download_file(client, f"{api_url}/go", tmp_path / "out", options=options())
    assert len(api.requests) == 1


async def test_a_redirect_with_an_invalid_location_is_refused_at_once(tmp_path):
    """A Location that is no URL ends the download (DownloadFailure), without retries."""
    api = RangeServer(content=CONTENT, redirect_path="/go", redirect_to="http://[::1/file")
    async with serving(api) as api_url, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="invalid Location"):
            await download_file(client, f"{api_url}/go", tmp_path / "out", options=options())
    assert len(api.requests) == 1


async def test_a_redirect_loop_stops_at_max_redirects(tmp_path):
    """A redirect to itself ends in DownloadFailure naming the limit, not an endless loop."""
    api = RangeServer(content=CONTENT, redirect_path="/go", redirect_to="/go")
    async with serving(api) as api_url, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="more than 2 redirects"):
            await download_file(
                client, f"{api_url}/go", tmp_path / "out", options=options(max_redirects=2)
            )
    assert 3 <= len(api.requests) <= client.max_redirects + 1


async def test_same_origin_redirect_keeps_the_credential(tmp_path, canary_secret):
    """A redirect within the API origin keeps Authorization on every hop."""
    api = RangeServer(content=CONTENT, redirect_path="/go", redirect_to="/file")
    async with serving(api) as api_url, httpx.AsyncClient() as client:
        auth = OriginAuth(api_url, Secret(f"Bearer {canary_secret}"))
        path = await download_file(
            client, f"{api_url}/go", tmp_path / "out", auth=auth, options=options()
        )
    assert path.read_bytes() == CONTENT
    assert [r.target for r in api.requests] == ["/go", "/file"]
    assert all(r.headers["authorization"] == f"Bearer {canary_secret}" for r in api.requests)


# ------------------------------------------------------------------------ segments

BIG = random.Random(9).randbytes(4 * 1024 * 1024 + 17)
SEGMENTED = {"segments": 4, "min_segment_size": 512 * 1024}


async def test_segmented_download_gives_identical_bytes(tmp_path, direct_read):
    """Four concurrent exact ranges give the same bytes, fetching each byte once."""
    server = RangeServer(content=BIG)
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client,
            f"{base}/file",
            tmp_path / "out",
            options=options(direct_read=direct_read, **SEGMENTED),
        )
    assert path.read_bytes() == BIG
    quarter = -(-len(BIG) // 4)
    probe = 512 * 1024
    assert ranges(server)[0] == f"bytes=0-{probe - 1}"
    assert sorted(ranges(server)[1:]) == sorted(
        [f"bytes={probe}-{quarter - 1}"]
        + [f"bytes={k * quarter}-{min(len(BIG), (k + 1) * quarter) - 1}" for k in range(1, 4)]
    )
    assert all(r.headers.get("if-range") == '"v1"' for r in server.requests[1:])
    assert server.bytes_sent == len(BIG)
    assert leftovers(tmp_path) == ["out"]


async def test_segment_cut_is_resumed_within_the_segment(tmp_path):
    """A cut in one segment is retried from that segment's bytes on disk."""
    server = RangeServer(content=BIG, drops=[None, 200_000])
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client, f"{base}/file", tmp_path / "out", options=options(**SEGMENTED)
        )
    assert path.read_bytes() == BIG
    assert len(server.requests) == 6
    assert server.bytes_sent == len(BIG)


async def test_segmented_resume_fetches_only_missing_bytes(tmp_path):
    """After an interrupted segmented download, the rerun fetches only what the sidecar lacks."""
    server = RangeServer(content=BIG)
    dest = tmp_path / "out"

    def crash_at_half(done: int, total: int | None) -> None:
        if total is not None and done >= total // 2:
            raise Crash

    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(Crash):
            await download_file(
                client, f"{base}/file", dest, progress=crash_at_half, options=options(**SEGMENTED)
            )
        sidecar = json.loads((tmp_path / "out.part.json").read_text())
        done_before = sum(d for _, _, d in sidecar["segments"])
        assert done_before >= len(BIG) // 2
        first_run = len(server.requests)
        path = await download_file(client, f"{base}/file", dest, options=options(**SEGMENTED))
    assert path.read_bytes() == BIG
    asked = []
    for request in server.requests[first_run:]:
        first, _, last = request.headers["range"].removeprefix("bytes=").partition("-")
        asked.append(int(last) - int(first) + 1)
    assert sum(asked) == len(BIG) - done_before


async def test_segment_answered_with_200_restarts_the_download(tmp_path):
    """If the file changes during a segmented download (a segment gets 200) it starts over cleanly."""
    server = RangeServer(content=BIG)

    def change_after_first(request: RecordedRequest) -> None:
        if len(server.requests) == 2:  # the first segment request sees a new file
            server.replace_content(NEW_CONTENT, '"v2"')

    server.on_request = change_after_first
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client, f"{base}/file", tmp_path / "out", options=options(**SEGMENTED)
        )
    assert path.read_bytes() == NEW_CONTENT
    assert leftovers(tmp_path) == ["out"]


async def test_segment_failure_surfaces_as_one_transport_failure(tmp_path):
    """A segment that runs out of retries raises TransportFailure (not an ExceptionGroup), keeping progress."""
    server = RangeServer(content=BIG, drops=[None, 0, 0, 0, 0, 0, 0, 0])
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(
                client,
                f"{base}/file",
                tmp_path / "out",
                options=options(max_retries=0, **SEGMENTED),
            )
    sidecar = json.loads((tmp_path / "out.part.json").read_text())
    assert len(sidecar["segments"]) == 4
    assert (tmp_path / "out.part").stat().st_size == len(BIG)


async def test_segmented_download_into_a_directory(tmp_path):
    """Segments work with a server-named file in a directory `dest`."""
    server = RangeServer(content=BIG, content_disposition='attachment; filename="big.bin"')
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path, options=options(**SEGMENTED))
    assert path == tmp_path / "big.bin"
    assert path.read_bytes() == BIG
    assert leftovers(tmp_path) == ["big.bin"]


async def test_small_file_is_not_segmented(tmp_path):
    """A file under twice min_segment_size is fetched sequentially (probe, then the rest) with segments > 1."""
    server = RangeServer(content=CONTENT)
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client, f"{base}/file", tmp_path / "out", options=options(**SEGMENTED)
        )
    assert path.read_bytes() == CONTENT
    assert ranges(server) == ["bytes=0-524287", "bytes=524288-"]
    assert server.requests[1].headers["if-range"] == '"v1"'


async def test_cancellation_keeps_the_part_for_a_resume(tmp_path):
    """A cancelled download keeps its `.part` and sidecar; the next call resumes from the bytes on disk."""
    server = RangeServer(content=CONTENT)
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with anyio.CancelScope() as scope:
            await download_file(
                client,
                f"{base}/file",
                dest,
                progress=lambda done, _: scope.cancel() if done >= 300_000 else None,
                options=options(),
            )
        assert scope.cancelled_caught
        kept = (tmp_path / "out.part").stat().st_size
        assert kept >= 300_000
        assert (tmp_path / "out.part.json").exists()
        path = await download_file(client, f"{base}/file", dest, options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server)[-1] == f"bytes={kept}-"


async def test_429_is_retried(tmp_path):
    """A 429 is retried like a 5xx."""
    server = RangeServer(content=CONTENT, statuses=[429, 429])
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    assert path.read_bytes() == CONTENT
    assert len(server.requests) == 3


async def test_symlink_in_dest_under_the_offered_name_is_refused(tmp_path):
    """A symlink in `dest` named like the offered file is not written through."""
    dest = tmp_path / "inbox"
    dest.mkdir()
    (dest / "clip.mp4").symlink_to(tmp_path / "victim")
    server = RangeServer(content=CONTENT, content_disposition='attachment; filename="clip.mp4"')
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="outside"):
            await download_file(client, f"{base}/file", dest, options=options())
    assert not (tmp_path / "victim").exists()


def test_invalid_options_name_the_field():
    """Out-of-range options raise ValueError naming the field."""
    with pytest.raises(ValueError, match="segments"):
        DownloadOptions(segments=0)
    with pytest.raises(ValueError, match="timeout"):
        DownloadOptions(timeout=0)


# ------------------------------------------------------------------------ OriginAuth


def _auth_headers(auth: httpx.Auth, url: str, **headers: str) -> httpx.Headers:
    request = httpx.Request("GET", url, headers=headers)
    return next(auth.sync_auth_flow(request)).headers


def test_origin_auth_adds_the_header_only_on_its_origin(canary_secret):
    """The credential goes to the exact (scheme, host, port) and nowhere else."""
    auth = OriginAuth("https://api.example.com", Secret(canary_secret))
    assert _auth_headers(auth, "https://api.example.com/x")["authorization"] == canary_secret
    assert _auth_headers(auth, "https://API.example.com:443/x")["authorization"] == canary_secret
    for other in (
        "http://api.example.com/x",
        "https://api.example.com:8443/x",
        "https://cdn.example.com/x",
        "https://api.example.com.evil.net/x",
    ):
        assert "authorization" not in _auth_headers(auth, other)


def test_origin_auth_strips_a_stray_credential_for_other_origins(canary_secret):
    """An Authorization header set elsewhere is removed from requests to another origin."""
    auth = OriginAuth("https://api.example.com", Secret(canary_secret))
    headers = _auth_headers(auth, "https://cdn.example.com/x", Authorization=canary_secret)
    assert "authorization" not in headers


def test_origin_auth_repr_hides_the_secret(canary_secret):
    """repr and str of OriginAuth never show the credential."""
    auth = OriginAuth("https://api.example.com", Secret(canary_secret))
    assert canary_secret not in repr(auth)
    assert canary_secret not in str(auth)
    assert "api.example.com" in repr(auth)


def test_origin_auth_refuses_bad_arguments(canary_secret):
    """A non-http origin or a plain-string credential is refused with a clear error."""
    with pytest.raises(ValueError, match="origin_url"):
        OriginAuth("ftp://api.example.com", Secret(canary_secret))
    with pytest.raises(TypeError, match="Secret"):
        OriginAuth("https://api.example.com", canary_secret)  # type: ignore[arg-type]


async def test_fresh_range_request_accepts_a_new_total(tmp_path):
    """A rerun that starts from byte 0 accepts a new size even though the sidecar knew another."""
    server = RangeServer(content=CONTENT, drops=[0])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/file", dest, options=options(max_retries=0))
        server.replace_content(NEW_CONTENT, '"v2"')
        path = await download_file(client, f"{base}/file", dest, options=options(**SEGMENTED))
    assert path.read_bytes() == NEW_CONTENT


async def test_slow_disk_moves_writes_to_a_worker_thread(tmp_path, monkeypatch):
    """Once a write is slower than the threshold, later writes run in a worker thread, same bytes."""
    monkeypatch.setattr(_body, "_SLOW_WRITE", -1.0)
    offloaded: list[int] = []
    real_run_sync = anyio.to_thread.run_sync

    async def spy(func, *args, **kwargs):
        if func is _body.pwrite_all:
            offloaded.append(args[2])
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    server = RangeServer(content=CONTENT, drops=[300_000])
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    assert path.read_bytes() == CONTENT
    assert offloaded
    assert offloaded[0] > 0  # the first write ran on the loop and was measured


async def test_error_excerpt_never_echoes_the_credential(tmp_path, canary_secret):
    """An error body that echoes the credential is masked in HTTPStatusFailure.body_excerpt."""
    server = RangeServer(
        content=CONTENT, statuses=[403], status_body=f"bad token Bearer {canary_secret}".encode()
    )
    async with serving(server) as base, httpx.AsyncClient() as client:
        auth = OriginAuth(base, Secret(f"Bearer {canary_secret}"))
        with pytest.raises(HTTPStatusFailure) as caught:
            await download_file(client, f"{base}/file", tmp_path / "out", auth=auth)
    assert caught.value.status_code == 403
    assert canary_secret not in caught.value.body_excerpt
    assert canary_secret not in str(caught.value)
    assert "bad token" in caught.value.body_excerpt


async def test_416_contradicting_the_known_size_is_not_taken_as_complete(tmp_path):
    """A 416 whose total equals the bytes on disk but not the size seen first restarts, never 'completes'."""
    content = bytes(range(256)) * 4  # 1,024 bytes
    served: list[str] = []

    class CutAfter(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield content[:500]
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        served.append(request.headers.get("range", "-"))
        headers = {"ETag": '"v1"', "Accept-Ranges": "bytes"}
        if len(served) == 1:
            return httpx.Response(
                200, headers={**headers, "Content-Length": "1024"}, stream=CutAfter()
            )
        if len(served) == 2:
            return httpx.Response(416, headers={"Content-Range": "bytes */500"})
        return httpx.Response(
            200, headers={**headers, "Content-Length": "1024"}, stream=httpx.ByteStream(content)
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        path = await download_file(
            client, "https://files.test/f.bin", tmp_path / "f.bin", options=options()
        )
    assert served[:2] == ["-", "bytes=500-"]
    assert path.read_bytes() == content


async def test_segments_engage_when_only_the_206_proves_range_support(tmp_path):
    """Like nginx, the server names `Accept-Ranges` on 200s only: the 206 itself is the proof, and the
    download still goes out in four concurrent ranges (issue 16: one connection, 0.23x aria2c)."""
    server = RangeServer(content=BIG, accept_ranges_on_206=False)
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client, f"{base}/file", tmp_path / "out", options=options(**SEGMENTED)
        )
    assert path.read_bytes() == BIG
    assert len(ranges(server)) == 5, ranges(server)
    assert server.bytes_sent == len(BIG)
