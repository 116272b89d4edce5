"""`download_file` against servers (and disks) written to attack it (issue 11 items 4, 5, 8; issue 12 item 1).

Each test reproduces one misbehaviour on a real loopback server (tests/rangeserver.py) and checks the
bound: attempts that only re-fetch old bytes run the retries out, a whole-call deadline, progress
while bytes flow, no splice of two versions, an expired link kept resumable from a re-issued URL, a
full disk as a typed failure, no silent replacement of an existing file, `dest` ending in a separator.
"""

from __future__ import annotations

import email.utils
import errno
import os
import random
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
import pytest
from rangeserver import RangeServer, serving

from _clientkit import _body
from _clientkit._download import DownloadOptions, download_file
from _clientkit._failures import DownloadFailure, HTTPStatusFailure, TransportFailure

CONTENT = random.Random(11).randbytes(1_000_003)
SMALL = random.Random(12).randbytes(100_000)


class InstantClock:
    """A Clock whose sleeps return at once; `now` moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await anyio.lowlevel.checkpoint()


def options(**overrides: object) -> DownloadOptions:
    settings: dict[str, object] = {"backoff_base": 0.0, "chunk_size": 64 * 1024}
    settings.update(overrides)
    return DownloadOptions(**settings)  # type: ignore[arg-type]


def ranges(server: RangeServer) -> list[str | None]:
    return [r.headers.get("range") for r in server.requests]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------------ bounded attempts (issue 11 item 4)


async def test_server_ignoring_range_and_cutting_at_the_same_byte_runs_the_retries_out(tmp_path):
    """200 to every Range, cut at byte 500 each time: 1 + max_retries requests, not an endless loop."""
    server = RangeServer(content=CONTENT, ignore_range=True, drops=[500] * 50)
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure, match="without progress"):
            await download_file(
                client, f"{base}/file", tmp_path / "out", options=options(max_retries=2)
            )
    assert len(server.requests) == 3
    assert (tmp_path / "out.part").exists()  # kept for a later resume


async def test_cuts_that_each_reach_further_still_succeed(tmp_path):
    """Progress past the furthest earlier point clears the count, even when Range is ignored."""
    server = RangeServer(
        content=SMALL, ignore_range=True, drops=[10_000, 20_000, 30_000, 40_000, 50_000]
    )
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client, f"{base}/file", tmp_path / "out", options=options(max_retries=1)
        )
    assert path.read_bytes() == SMALL
    assert len(server.requests) == 6


async def test_total_deadline_ends_a_trickling_download_and_keeps_the_part(tmp_path):
    """A body at 20 kB/s (50 s for 1 MB) under a 0.5 s deadline: TransportFailure, `.part` kept."""
    server = RangeServer(content=CONTENT, bytes_per_second=20_000)
    began = time.monotonic()
    async with serving(server) as base, httpx.AsyncClient() as client:
        with anyio.fail_after(20), pytest.raises(TransportFailure, match="deadline") as caught:
            await download_file(
                client, f"{base}/file", tmp_path / "out", options=options(deadline=0.5)
            )
    assert time.monotonic() - began < 10
    assert caught.value.request_sent is True
    assert (tmp_path / "out.part").stat().st_size > 0
    assert (tmp_path / "out.part.json").exists()


def test_deadline_option_is_validated():
    """A deadline must be a positive number or None."""
    with pytest.raises(ValueError, match="deadline"):
        DownloadOptions(deadline=0)
    with pytest.raises(ValueError, match="progress_interval"):
        DownloadOptions(progress_interval=-1)


async def test_progress_is_reported_while_bytes_flow_not_only_per_chunk(tmp_path):
    """With 1 MiB chunks, the first bytes and then bytes after each second are reported at once.

    The server holds the body after 1,000 and after 2,000 bytes until the callback has seen them; a
    downloader that reports only per written chunk never releases it (the test then times out).
    """
    first, second = anyio.Event(), anyio.Event()
    server = RangeServer(content=SMALL, holds=[(1_000, first), (2_000, second)])
    clock = InstantClock()
    seen: list[int] = []

    def progress(done: int, _total: int | None) -> None:
        seen.append(done)
        clock.now += 1.0  # a second passes between two reports
        if done >= 1_000:
            first.set()
        if done >= 2_000:
            second.set()

    async with serving(server) as base, httpx.AsyncClient() as client:
        with anyio.fail_after(10):
            path = await download_file(
                client,
                f"{base}/file",
                tmp_path / "out",
                progress=progress,
                clock=clock,
                options=options(chunk_size=1024 * 1024),
            )
    assert path.read_bytes() == SMALL
    assert seen[0] <= 1_000
    assert seen[-1] == len(SMALL)
    assert seen == sorted(seen)


# ------------------------------------------------------------------ validators (issue 11 item 5)


async def test_206_with_another_etag_than_if_range_is_refused_and_the_part_kept(tmp_path):
    """A cache that answers 206 for a newer version (ETag "v2" to If-Range "v1") is not spliced."""
    server = RangeServer(content=CONTENT, drops=[400_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/file", dest, options=options(max_retries=0))
        server.etag = '"v2"'
        server.content = CONTENT[:400_000] + bytes(len(CONTENT) - 400_000)
        server.ignore_if_range = True
        with pytest.raises(DownloadFailure, match="ETag") as caught:
            await download_file(client, f"{base}/file", dest, options=options())
    assert not isinstance(caught.value, HTTPStatusFailure)
    assert server.requests[-1].headers["if-range"] == '"v1"'
    assert not dest.exists()
    assert (tmp_path / "out.part").read_bytes() == CONTENT[:400_000]
    assert (tmp_path / "out.part.json").exists()


async def test_206_with_another_last_modified_than_if_range_is_refused(tmp_path):
    """With a date validator, a 206 carrying another Last-Modified is refused the same way."""
    old = email.utils.formatdate(time.time() - 3600, usegmt=True)
    new = email.utils.formatdate(time.time() - 60, usegmt=True)
    server = RangeServer(content=CONTENT, etag=None, last_modified=old, drops=[300_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/file", dest, options=options(max_retries=0))
        server.last_modified = new
        server.ignore_if_range = True
        with pytest.raises(DownloadFailure, match="Last-Modified"):
            await download_file(client, f"{base}/file", dest, options=options())
    assert server.requests[-1].headers["if-range"] == old
    assert (tmp_path / "out.part").stat().st_size == 300_000


async def test_segment_206_with_another_etag_is_refused(tmp_path):
    """Segmented downloads check every segment's 206 against If-Range too."""
    server = RangeServer(content=CONTENT)
    seen = {"n": 0}

    def change_after_probe(_request: object) -> None:
        seen["n"] += 1
        if seen["n"] == 2:
            server.etag = '"v2"'
            server.ignore_if_range = True

    server.on_request = change_after_probe
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="another version"):
            await download_file(
                client,
                f"{base}/file",
                tmp_path / "out",
                options=options(segments=2, min_segment_size=200_000, max_retries=0),
            )
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ expired links (issue 11 item 2)


@pytest.mark.parametrize("status", [401, 403, 410])
async def test_expired_link_mid_download_is_typed_not_retried_and_keeps_the_part(tmp_path, status):
    """A cut, then 403 on the resume: one typed failure after 2 requests; `.part` and sidecar kept."""
    from _clientkit._failures import LinkExpiredFailure

    server = RangeServer(content=CONTENT, drops=[400_000])

    def expire(_request: object) -> None:
        if len(server.requests) == 2:
            server.statuses.append(status)

    server.on_request = expire
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(LinkExpiredFailure) as caught:
            await download_file(client, f"{base}/file?sig=old", tmp_path / "out", options=options())
    assert caught.value.status_code == status
    assert isinstance(caught.value, HTTPStatusFailure)
    assert len(server.requests) == 2
    assert (tmp_path / "out.part").stat().st_size == 400_000
    assert (tmp_path / "out.part.json").exists()


async def test_reissued_url_resumes_the_part_with_if_range(tmp_path):
    """After an expired link, the same `.part` resumes from a NEW URL given `reissue_of`: no byte twice."""
    server = RangeServer(content=CONTENT, drops=[400_000], statuses=[])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        old, new = f"{base}/file?sig=old", f"{base}/file?sig=new"
        with pytest.raises(TransportFailure):
            await download_file(client, old, dest, options=options(max_retries=0))
        path = await download_file(client, new, dest, reissue_of=old, options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=400000-"]
    assert server.requests[1].headers["if-range"] == '"v1"'
    assert server.requests[1].target == "/file?sig=new"
    assert server.bytes_sent == len(CONTENT)
    assert leftovers(tmp_path) == ["out"]


async def test_reissued_url_resumes_in_directory_mode(tmp_path):
    """In directory mode the old URL's sidecar is found by its key and the `.part` resumed."""
    server = RangeServer(
        content=CONTENT, drops=[300_000], content_disposition='attachment; filename="film.mp4"'
    )
    async with serving(server) as base, httpx.AsyncClient() as client:
        old, new = f"{base}/file?sig=old", f"{base}/file?sig=new"
        with pytest.raises(TransportFailure):
            await download_file(client, old, tmp_path, options=options(max_retries=0))
        path = await download_file(client, new, tmp_path, reissue_of=old, options=options())
    assert path == tmp_path / "film.mp4"
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, "bytes=300000-"]
    assert leftovers(tmp_path) == ["film.mp4"]


async def test_a_new_url_without_reissue_of_starts_over(tmp_path):
    """Without `reissue_of`, a sidecar recorded for another URL is discarded (byte 0)."""
    server = RangeServer(content=CONTENT, drops=[400_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(TransportFailure):
            await download_file(client, f"{base}/a", dest, options=options(max_retries=0))
        path = await download_file(client, f"{base}/b", dest, options=options())
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, None]


async def test_reissue_without_a_strong_validator_starts_over(tmp_path):
    """A `.part` whose sidecar holds no strong validator is not resumed across URLs (nothing to check)."""
    server = RangeServer(content=CONTENT, etag='W/"weak"', drops=[400_000])
    dest = tmp_path / "out"
    async with serving(server) as base, httpx.AsyncClient() as client:
        old = f"{base}/file?sig=old"
        with pytest.raises(TransportFailure):
            await download_file(client, old, dest, options=options(max_retries=0))
        path = await download_file(
            client, f"{base}/file?sig=new", dest, reissue_of=old, options=options()
        )
    assert path.read_bytes() == CONTENT
    assert ranges(server) == [None, None]


# ------------------------------------------------------------------ the disk (issue 11 item 8)


async def test_disk_full_is_a_typed_failure_and_keeps_the_part(tmp_path, monkeypatch):
    """ENOSPC while writing raises DiskFullFailure naming the `.part` and the bytes still needed."""
    from _clientkit._failures import DiskFullFailure

    real = _body.pwrite_all
    calls = {"n": 0}

    def fill_up(fd: int, buffers: list[bytes], offset: int) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, buffers, offset)

    monkeypatch.setattr(_body, "pwrite_all", fill_up)
    server = RangeServer(content=CONTENT)
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DiskFullFailure) as caught:
            await download_file(client, f"{base}/file", tmp_path / "out", options=options())
    failure = caught.value
    on_disk = (tmp_path / "out.part").stat().st_size
    assert failure.path == str(tmp_path / "out.part")
    assert failure.part_path == failure.path
    assert failure.needed_bytes == len(CONTENT) - on_disk
    assert str(failure.needed_bytes) in str(failure)
    assert (tmp_path / "out.part.json").exists()


async def test_existing_file_dest_is_not_replaced_and_nothing_is_sent(tmp_path):
    """A `dest` file that exists is refused before any request; `overwrite=True` replaces it."""
    from _clientkit._failures import DestinationExistsFailure

    dest = tmp_path / "out"
    dest.write_bytes(b"precious")
    server = RangeServer(content=SMALL)
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DestinationExistsFailure, match="overwrite=True"):
            await download_file(client, f"{base}/file", dest, options=options())
        assert server.requests == []
        assert dest.read_bytes() == b"precious"
        path = await download_file(client, f"{base}/file", dest, overwrite=True, options=options())
    assert path.read_bytes() == SMALL


async def test_existing_file_named_by_the_server_is_not_replaced(tmp_path):
    """In directory mode, a file the server names that exists already is left alone, no `.part` made."""
    (tmp_path / "film.mp4").write_bytes(b"precious")
    server = RangeServer(content=SMALL, content_disposition='attachment; filename="film.mp4"')
    async with serving(server) as base, httpx.AsyncClient() as client:
        with pytest.raises(DownloadFailure, match="exists"):
            await download_file(client, f"{base}/file", tmp_path, options=options())
    assert (tmp_path / "film.mp4").read_bytes() == b"precious"
    assert [n for n in leftovers(tmp_path) if n.endswith(".part")] == []


# ------------------------------------------------------------------ dest ending in a separator (issue 12)


async def test_dest_ending_with_a_separator_is_a_directory_made_if_missing(tmp_path):
    """`download(url, "out/")` with no `out/` creates the directory; several files land inside it."""
    names = iter(["a.bin", "b.bin", "c.bin"])
    server = RangeServer(content=SMALL)
    async with serving(server) as base, httpx.AsyncClient() as client:
        for _ in range(3):
            server.content_disposition = f'attachment; filename="{next(names)}"'
            await download_file(client, f"{base}/file", f"{tmp_path / 'out'}/", options=options())
    assert (tmp_path / "out").is_dir()
    assert leftovers(tmp_path / "out") == ["a.bin", "b.bin", "c.bin"]
