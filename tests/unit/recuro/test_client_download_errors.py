"""Both clients' `download()`: typed errors for expired links, full disks and existing files; `dir/` dests.

Issue 11 items 2 and 8, issue 12 item 1, against the loopback RangeServer (tests/rangeserver.py).
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import anyio
import pytest
from rangeserver import RangeServer, serving

import mediacrush_async
import recuro_async
from _clientkit import _body
from _clientkit._download import DownloadOptions
from mediacrush_async import MediaCrushClient
from recuro_async import RecuroClient

CONTENT = random.Random(21).randbytes(600_000)
FAST = DownloadOptions(backoff_base=0.0, chunk_size=64 * 1024)


def recuro(**kwargs: object) -> RecuroClient:
    return RecuroClient(
        "key",
        "secret",
        base_url="http://127.0.0.1:9/api/1.0/",
        rate_limit=None,
        download_options=FAST,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_recuro_expired_link_is_typed_kept_and_resumed_from_a_reissued_url(tmp_path):
    """403 after a cut: DownloadLinkExpiredError (2 requests, `.part` kept); the fresh URL resumes it."""
    server = RangeServer(content=CONTENT, drops=[250_000])

    def expire(_request: object) -> None:
        if len(server.requests) == 2:
            server.statuses.append(403)

    server.on_request = expire
    dest = tmp_path / "restored"
    dest.mkdir()
    async with serving(server) as base, recuro() as client:
        old = f"{base}/download.php?guid=g&expires=1&sig=a"
        with pytest.raises(recuro_async.DownloadLinkExpiredError) as caught:
            await client.download(old, dest)
        error = caught.value
        assert isinstance(error, recuro_async.DownloadError)
        assert isinstance(error, recuro_async.RecuroHTTPError)
        assert error.status_code == 403
        assert error.part_path is not None
        assert (tmp_path / "restored" / Path(error.part_path).name).stat().st_size == 250_000
        assert len(server.requests) == 2
        new = f"{base}/download.php?guid=g&expires=2&sig=b"
        path = await client.download(new, dest, reissue_of=old)
    assert path.read_bytes() == CONTENT
    assert server.requests[-1].headers["range"] == "bytes=250000-"
    assert server.bytes_sent == len(CONTENT)


@pytest.mark.parametrize("client_kind", ["recuro", "mediacrush"])
async def test_dest_with_a_trailing_separator_is_a_new_directory(tmp_path, client_kind):
    """`download(url, "out/")` without `out/` makes the directory and writes inside it (issue 12)."""
    server = RangeServer(content=CONTENT, content_disposition='attachment; filename="a.mp4"')
    async with serving(server) as base:
        client = recuro() if client_kind == "recuro" else MediaCrushClient(base)
        async with client:
            path = await client.download(f"{base}/a", f"{tmp_path / 'out'}{os.sep}")
            server.content_disposition = 'attachment; filename="b.mp4"'
            second = await client.download(f"{base}/b", f"{tmp_path / 'out'}/")
    assert path == tmp_path / "out" / "a.mp4"
    assert second == tmp_path / "out" / "b.mp4"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]


@pytest.mark.parametrize("package", [recuro_async, mediacrush_async])
async def test_existing_file_is_never_replaced_silently(tmp_path, package):
    """An existing `dest` file raises DestinationExistsError (a FileExistsError) before any request."""
    server = RangeServer(content=CONTENT)
    dest = tmp_path / "film.mp4"
    dest.write_bytes(b"precious")
    async with serving(server) as base:
        client = recuro() if package is recuro_async else MediaCrushClient(base)
        async with client:
            with pytest.raises(package.DestinationExistsError) as caught:
                await client.download(f"{base}/film", dest)
            assert isinstance(caught.value, FileExistsError)
            assert caught.value.path == str(dest)
            assert server.requests == []
            path = await client.download(f"{base}/film", dest, overwrite=True)
    assert path.read_bytes() == CONTENT


@pytest.mark.parametrize("package", [recuro_async, mediacrush_async])
async def test_full_disk_is_a_typed_error_with_the_part_kept(tmp_path, package, monkeypatch):
    """ENOSPC while writing is DiskFullError (an OSError, errno ENOSPC) naming the path and the need."""

    def fill_up(_fd: int, _buffers: list[bytes], _offset: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_body, "pwrite_all", fill_up)
    server = RangeServer(content=CONTENT)
    async with serving(server) as base:
        client = recuro() if package is recuro_async else MediaCrushClient(base)
        async with client:
            with anyio.fail_after(10), pytest.raises(package.DiskFullError) as caught:
                await client.download(f"{base}/film", tmp_path / "film.mp4")
    error = caught.value
    assert isinstance(error, OSError)
    assert error.errno == errno.ENOSPC
    assert error.path == str(tmp_path / "film.mp4.part")
    assert error.needed_bytes == len(CONTENT)
    assert (tmp_path / "film.mp4.part.json").exists()
