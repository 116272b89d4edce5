"""Checked by mypy --strict, never run: the public MediaCrush API has the shapes users rely on."""

from __future__ import annotations

import io
from pathlib import Path

import httpx

from mediacrush_async import (
    Album,
    ByteBudget,
    File,
    FileEntry,
    MediaCrushAPIError,
    MediaCrushClient,
    MediaCrushError,
    ProcessingStatus,
    Status,
    UploadResult,
    content_hash,
)


async def flow() -> None:
    async with MediaCrushClient(
        "https://mediacru.sh",
        cors_status=False,
        byte_budget=ByteBudget(max_bytes=250_000_000, period=3600.0),
        timeout=30.0,
        max_retries=4,
        http_client=httpx.AsyncClient(),
    ) as mc:
        up: UploadResult = await mc.upload_file("cat.gif", progress=lambda sent, total: None)
        again: UploadResult = await mc.upload_file(io.BytesIO(b"gif"), filename="x.gif", skip_existing=False)
        by_bytes: UploadResult = await mc.upload_file(b"bytes")
        by_url: UploadResult = await mc.upload_url("https://example.org/cat.gif")
        st: Status = await mc.wait(up.hash, poll_interval=1.0, timeout=None)
        terminal: bool = st.status.is_terminal and not st.status.is_retryable
        if st.status is ProcessingStatus.DONE and st.file is not None:
            for entry in st.file.files:
                path: Path = await mc.download(entry, "out/", resume=True, progress=lambda d, t: None)
                del path
        blob: File | Album = await mc.info(up.hash)
        many: dict[str, File | Album | None] = await mc.info_many([up.hash])
        urls: dict[str, File | None] = await mc.url_info(["https://example.org/cat.gif"])
        known: bool = await mc.exists(up.hash)
        statuses: dict[str, Status | None] = await mc.status_many([up.hash])
        flags: dict[str, bool] = await mc.get_flags(up.hash)
        flags = await mc.set_flags(up.hash, nsfw=True, loop=False)
        album: str = await mc.create_album([up.hash, by_url.hash])
        await mc.delete(album)
        entry2: FileEntry = FileEntry(file="/x.mp4", url=None, type="video/mp4")
        await mc.download("https://cdn.mediacru.sh/x.mp4", Path("out"))
        del again, by_bytes, terminal, blob, many, urls, known, statuses, flags, entry2


def hashing() -> str:
    local: str = content_hash(b"bytes")
    return local + content_hash(Path("cat.gif")) + content_hash(io.BytesIO(b"x"))


def errors(exc: MediaCrushError) -> int | None:
    if isinstance(exc, MediaCrushAPIError):
        return exc.status_code
    return None
