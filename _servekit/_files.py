"""One byte-range file responder (RFC 9110 sections 13.1.5, 14): Range and If-Range, 200/206/416, the
body streamed from memory or from disk without blocking the loop, with hooks for the faults a test server
injects (a body cut after N bytes, a bandwidth cap).

By default a 206 carries no `Accept-Ranges` (nginx, like most servers, names it on 200s only: the 206
itself proves range support); `accept_ranges_on_206=True` sends it there too.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Final, Literal

import anyio
import anyio.to_thread
import attrs

from _servekit._http import Receive, Send, cancel_on_disconnect, encode_headers

__all__ = [
    "CHUNK",
    "Selection",
    "Source",
    "if_range_matches",
    "parse_range",
    "response_headers",
    "select",
    "send_file",
    "stream",
]

CHUNK: Final = 1024 * 1024
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)

Unsatisfiable = Literal["unsatisfiable"]


def parse_range(header: str | None, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """The single byte range `header` asks of `size` bytes: `(first, last)` clipped to the end,
    "unsatisfiable" (first byte past the end, a zero suffix, a suffix of an empty file), or None to
    ignore the header (absent, malformed, several ranges, another unit, last < first), which RFC 9110
    allows: the whole representation is sent."""
    match = _RANGE.fullmatch(header) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - count), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(int(last) if last else size - 1, size - 1)


def if_range_matches(value: str, *, etag: str | None, last_modified: str | None) -> bool:
    """If-Range holds: a strong entity tag equal to ours (weak tags never match), or exactly our
    Last-Modified date."""
    value = value.strip()
    if value.startswith("W/"):
        return False
    if value.startswith('"'):
        return etag is not None and not etag.startswith("W/") and value == etag
    if last_modified is None:
        return False
    try:
        return email.utils.parsedate_to_datetime(value) == email.utils.parsedate_to_datetime(
            last_modified
        )
    except (TypeError, ValueError):
        return False


@attrs.frozen
class Selection:
    """What to send of a representation of `size` bytes: `length` bytes from `start` with `status`."""

    status: int  # 200, 206 or 416
    start: int
    length: int
    size: int

    @property
    def content_range(self) -> str | None:
        """The Content-Range value of a 206 or a 416."""
        if self.status == 206:
            return f"bytes {self.start}-{self.start + self.length - 1}/{self.size}"
        if self.status == 416:
            return f"bytes */{self.size}"
        return None


def select(
    size: int,
    range_header: str | None,
    if_range: str | None,
    *,
    etag: str | None,
    last_modified: str | None,
) -> Selection:
    """Apply Range (when If-Range, if any, holds) to a representation of `size` bytes."""
    if range_header is not None and (
        if_range is None or if_range_matches(if_range, etag=etag, last_modified=last_modified)
    ):
        wanted = parse_range(range_header, size)
        if wanted == "unsatisfiable":
            return Selection(416, 0, 0, size)
        if wanted is not None:
            first, last = wanted
            return Selection(206, first, last - first + 1, size)
    return Selection(200, 0, size, size)


def response_headers(
    selection: Selection, headers: Iterable[tuple[str, str]], *, accept_ranges_on_206: bool = False
) -> list[tuple[str, str]]:
    """`headers` plus Accept-Ranges (not on a 206 unless asked), Content-Range and Content-Length."""
    out = [h for h in headers if h[0].lower() != "accept-ranges"]
    if selection.status != 206 or accept_ranges_on_206:
        out.append(("accept-ranges", "bytes"))
    content_range = selection.content_range
    if content_range is not None:
        out.append(("content-range", content_range))
    out.append(("content-length", str(selection.length)))
    return out


@attrs.frozen
class Source:
    """The bytes of a representation: in memory (`data`) or in a file (`path`)."""

    data: bytes | None = None
    path: Path | None = None


async def send_file(
    send: Send,
    source: Source,
    selection: Selection,
    headers: Iterable[tuple[str, str]],
    *,
    head: bool = False,
    receive: Receive | None = None,
    accept_ranges_on_206: bool = False,
    cut: int | None = None,
    bandwidth: float | None = None,
    on_sent: Callable[[int], object] | None = None,
) -> int:
    """Answer with `selection` of `source`: the status, `headers` (see `response_headers`), the body.

    Hooks: `cut` stops after that many body bytes without ending the body (the caller then drops the
    connection); `bandwidth` paces the body (bytes per second); `on_sent(n)` follows each chunk. With
    `receive`, a client that disconnects ends the body early. Returns the body bytes sent.
    """
    out = response_headers(selection, headers, accept_ranges_on_206=accept_ranges_on_206)
    await send(
        {"type": "http.response.start", "status": selection.status, "headers": encode_headers(out)}
    )
    if head or selection.length == 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return 0
    if receive is None:
        return await stream(
            send, source, selection.start, selection.length,
            cut=cut, bandwidth=bandwidth, on_sent=on_sent,
        )  # fmt: skip
    sent = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_on_disconnect, receive, tg.cancel_scope)
        sent = await stream(
            send, source, selection.start, selection.length,
            cut=cut, bandwidth=bandwidth, on_sent=on_sent,
        )  # fmt: skip
        tg.cancel_scope.cancel()
    return sent


async def stream(
    send: Send,
    source: Source,
    start: int,
    length: int,
    *,
    cut: int | None = None,
    bandwidth: float | None = None,
    on_sent: Callable[[int], object] | None = None,
) -> int:
    """Send `length` bytes of `source` from `start` as body messages (see `send_file` for the hooks).

    The body is ended unless `cut` stops it; a file that ends early ends the body there (the client's
    length check fails the fetch). Returns the body bytes sent.
    """
    limit = length if cut is None else min(cut, length)
    chunk = CHUNK if bandwidth is None else max(1, min(CHUNK, int(bandwidth / 20)))
    began = anyio.current_time()
    sent = 0
    reader = _Reader(source, start, limit)
    try:
        while sent < limit:
            data = await reader.read(min(chunk, limit - sent))
            if not data:
                break
            if bandwidth is not None:
                await anyio.sleep_until(began + (sent + len(data)) / bandwidth)
            sent += len(data)
            last = cut is None and sent >= length
            await send({"type": "http.response.body", "body": data, "more_body": not last})
            if on_sent is not None:
                on_sent(len(data))
        if cut is None and (sent < length or length == 0):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await reader.close()
    return sent


class _Reader:
    """Reads `length` bytes of a source from `start`. A file is opened, sought and first read in one
    thread hop, and closed in the hop of its last read: nothing runs after the last body message."""

    def __init__(self, source: Source, start: int, length: int) -> None:
        self._data = source.data
        self._path = source.path
        self._pos = start
        self._end = start + length
        self._file: BinaryIO | None = None

    async def read(self, size: int) -> bytes:
        if self._path is None:
            data = (self._data or b"")[self._pos : self._pos + size]
        else:
            self._file, data = await anyio.to_thread.run_sync(self._read_file, self._path, size)
        self._pos += len(data)
        return data

    def _read_file(self, path: Path, size: int) -> tuple[BinaryIO | None, bytes]:
        handle = self._file
        if handle is None:
            handle = path.open("rb")
        try:
            if self._file is None:
                handle.seek(self._pos)
            data = handle.read(size)
        except BaseException:
            handle.close()
            raise
        if len(data) < size or self._pos + len(data) >= self._end:
            handle.close()
            return None, data
        return handle, data

    async def close(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(handle.close)
