"""The body writer of a download: reads a response body (straight from the socket where it can) and writes it.

Why it reads and writes the way it does (measured: benchmarks/RESULTS.md, "The downloader's design figures"):

- Reading through `aiter_raw()` costs about 50 us of Python per 64 KiB read in httpcore/h11. So for an
  HTTP/1.1 body with a Content-Length, after the first chunk (which empties h11's buffer) the rest is
  read straight from the connection's `network_stream` (httpcore's documented response extension) in
  reads of up to `chunk_size`, and the connection is closed afterwards instead of being reused.
  `direct_read=False` turns this off; other transports (mocks, HTTP/2) never use it.
- Buffers are gathered to `chunk_size` and written with one `pwritev`, on the event loop while writes
  are fast (a 1 MiB write into the page cache is cheaper than a thread hop); the first write slower
  than `_SLOW_WRITE` (a throttled or network disk) moves the rest of the download's writes to a
  worker thread.
- With `fsync`, writeback is started every `_WRITEBACK_BYTES` (`posix_fadvise(DONTNEED)`: Linux
  starts it without waiting), so the final fsync is short.

Memory is constant: at most `chunk_size` of buffers per body being written.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import anyio
import httpcore
import httpx

from ._partfile import pwrite_all
from ._ranges import content_length
from ._redact import redact_excerpt
from ._retry import Retryable

__all__ = ["READ_FAILURES", "BodyWriter", "read_excerpt"]

_log = logging.getLogger("_clientkit")

_MIB: Final = 1024 * 1024
_WRITEBACK_BYTES: Final = 32 * _MIB  # start writeback of dirty pages this often (with fsync=True)
_WRITEBACK_ADVICE: Final = getattr(os, "POSIX_FADV_DONTNEED", None)
_SLOW_WRITE: Final = 0.010  # seconds; one write slower than this moves writes off the event loop
_EXCERPT_BYTES: Final = 512
READ_FAILURES: Final = (
    httpx.TransportError,
    httpcore.NetworkError,
    httpcore.TimeoutException,
    httpcore.ProtocolError,
)
# Direct reads rely on httpcore 1.x handing over h11's whole buffer in the first body chunk.
_DIRECT_READ_SUPPORTED: Final = httpcore.__version__.startswith("1.")


class _NetworkStream(Protocol):
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes: ...  # noqa: ASYNC109 (httpcore's signature)


class BodyWriter:
    """Writes response bodies into one open file descriptor at given positions.

    `flush_due()` says when the bytes gathered so far should be written before `chunk_size` is reached
    (a progress report is due); `wrote(size)` is awaited after every write, for the caller's accounting.
    """

    def __init__(
        self,
        fd: int,
        *,
        chunk_size: int,
        timeout: float | None,
        direct_read: bool,
        fsync: bool,
        flush_due: Callable[[], bool],
    ) -> None:
        self.fd = fd
        self._chunk_size = chunk_size
        self._timeout = timeout
        self._direct_read = direct_read and _DIRECT_READ_SUPPORTED
        self._advice = _WRITEBACK_ADVICE if fsync else None
        self._flush_due = flush_due
        self._offload = False
        self._since_writeback = 0

    async def write_body(
        self,
        response: httpx.Response,
        *,
        position: int,
        stop: int | None,
        wrote: Callable[[int], Awaitable[None]],
    ) -> None:
        """Write the body from `position` up to `stop` (exclusive) or its end; flush before any raise.

        A cut or failed read raises `Retryable` (the bytes before it are on disk).
        """
        pending: list[bytes] = []
        pending_size = 0
        flushed_to = position
        wanted = None if stop is None else stop - position
        got = 0
        remaining = content_length(response.headers)
        network = self._network_stream(response, remaining)
        direct = False
        chunks = response.aiter_raw()
        try:
            while wanted is None or got < wanted:
                if direct:
                    assert network is not None  # noqa: S101
                    assert remaining is not None  # noqa: S101
                    if remaining <= 0:
                        break
                    size = min(remaining, self._chunk_size)
                    if wanted is not None:
                        size = min(size, wanted - got)
                    data = await network.read(size, timeout=self._timeout)
                    if not data:
                        raise Retryable("the connection closed mid-body", request_sent=True)
                else:
                    try:
                        data = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    # h11 hands over everything it had buffered in this first chunk; the rest of the
                    # body can be read from the socket directly (see the module docstring).
                    direct = network is not None and remaining is not None and remaining > len(data)
                if remaining is not None:
                    remaining -= len(data)
                if wanted is not None and got + len(data) > wanted:
                    data = data[: wanted - got]
                got += len(data)
                pending.append(data)
                pending_size += len(data)
                if pending_size >= self._chunk_size or self._flush_due():
                    batch, at = pending, flushed_to
                    pending, flushed_to, pending_size = [], flushed_to + pending_size, 0
                    await self._write(at, batch, wrote)
        except READ_FAILURES as exc:
            raise Retryable(
                f"{type(exc).__name__} while reading the body", request_sent=True
            ) from exc
        finally:
            if pending:
                with anyio.CancelScope(shield=True):
                    await self._write(flushed_to, pending, wrote)
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    def _network_stream(
        self, response: httpx.Response, length: int | None
    ) -> _NetworkStream | None:
        if not self._direct_read or length is None or response.http_version != "HTTP/1.1":
            return None
        stream = response.extensions.get("network_stream")
        if stream is None or not callable(getattr(stream, "read", None)):
            return None
        candidate: _NetworkStream = stream
        return candidate

    async def _write(
        self, position: int, buffers: list[bytes], wrote: Callable[[int], Awaitable[None]]
    ) -> None:
        fd = self.fd
        size = sum(len(b) for b in buffers)
        if self._offload:
            await anyio.to_thread.run_sync(pwrite_all, fd, buffers, position)
        else:
            began = time.perf_counter()
            pwrite_all(fd, buffers, position)
            elapsed = time.perf_counter() - began
            if elapsed > _SLOW_WRITE:
                self._offload = True
                _log.debug(
                    "slow disk writes: moving them to a worker thread", extra={"seconds": elapsed}
                )
        await wrote(size)
        advice = self._advice
        if advice is not None:
            self._since_writeback += size
            if self._since_writeback >= _WRITEBACK_BYTES:
                self._since_writeback = 0
                # Start writeback now (Linux: WB_SYNC_NONE, no waiting) so the final fsync does not
                # flush the whole file at the end; pages already on disk leave the page cache.
                await anyio.to_thread.run_sync(os.posix_fadvise, fd, 0, 0, advice)


async def read_excerpt(response: httpx.Response, secrets: tuple[str, ...]) -> str:
    """The first bytes of an error body as printable text, `secrets` masked before any cut."""
    if response.is_stream_consumed:  # already read (a mock transport, an event hook): use that
        try:
            return _printable(response.content, secrets)
        except httpx.ResponseNotRead:
            return ""
    body = b""
    chunks = response.aiter_raw()
    try:
        async for chunk in chunks:
            body += chunk
            if len(body) >= _EXCERPT_BYTES:
                break
    except READ_FAILURES:
        pass
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
    return _printable(body, secrets)


def _printable(body: bytes, secrets: tuple[str, ...]) -> str:
    head = body[:_EXCERPT_BYTES]
    return redact_excerpt(head, secrets, limit=200, cut=len(body) >= _EXCERPT_BYTES)
