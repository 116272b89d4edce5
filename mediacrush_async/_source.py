"""Upload sources: a path, bytes or a binary file object, read in chunks off the event loop.

A source knows its size up front (so the multipart body has a Content-Length), can be read again from
its start (each retry streams the body anew), and never holds the whole file in memory: a path or a
seekable file object is read chunk by chunk in a worker thread; a non-seekable stream is first spooled
to a temporary file (in memory only up to `SPOOL_MEMORY`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import mimetypes
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

import anyio.to_thread

from ._constants import CHUNK_SIZE, SPOOL_MEMORY
from ._errors import InvalidArgumentError
from ._hash import FileInput, hash_from_digest
from ._validate import filename as check_filename

__all__ = ["ProgressCallback", "UploadSource", "open_source"]

ProgressCallback = Callable[[int, int], object]
"""`progress(bytes_sent, total)`; called as each chunk of the file is handed to the connection."""

_ALLOWED = "a path (str or os.PathLike), bytes, or a binary file object opened with 'rb'"
_DEFAULT_NAME = "file"


class UploadSource:
    """A readable, re-readable, sized upload body source."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        start: int,
        size: int,
        filename: str,
        owned: bool,
        in_memory: bool,
    ) -> None:
        self._stream = stream
        self._start = start
        self.size = size
        self.filename = filename
        self._owned = owned
        self._in_memory = in_memory

    def __repr__(self) -> str:
        return f"UploadSource(filename={self.filename!r}, size={self.size})"

    @property
    def content_type(self) -> str:
        """The part's Content-Type, guessed from the file name (the server records it as `type`)."""
        guessed, _ = mimetypes.guess_type(self.filename, strict=False)
        return guessed or "application/octet-stream"

    async def _run(self, func: Callable[[], bytes]) -> bytes:
        if self._in_memory:
            await (
                anyio.lowlevel.checkpoint()
            )  # a chunk of memory is cheap; a long run of them must yield
            return func()
        return await anyio.to_thread.run_sync(func)

    def _read_at(self, offset: int, size: int) -> bytes:
        self._stream.seek(self._start + offset)
        return _binary(self._stream.read(size))

    async def chunks(self, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The file's bytes from its start, `chunk_size` at a time (never more)."""
        offset = 0
        while offset < self.size:
            want = min(chunk_size, self.size - offset)
            try:
                data = await self._run(functools.partial(self._read_at, offset, want))
            except OSError as exc:
                raise InvalidArgumentError("file", f"cannot read the file: {exc}") from exc
            if not data:
                raise InvalidArgumentError(
                    "file", f"the file shrank while uploading ({offset} of {self.size} bytes read)"
                )
            offset += len(data)
            yield data

    async def content_hash(self) -> str:
        """The MediaCrush id of the source's bytes (MD5, read in chunks)."""
        md5 = hashlib.md5(usedforsecurity=False)
        async for chunk in self.chunks():
            # hashlib releases the GIL on large buffers: hashing in a worker keeps the loop responsive.
            await anyio.to_thread.run_sync(md5.update, chunk)
        return hash_from_digest(md5.digest())

    async def aclose(self) -> None:
        """Close what this source opened itself (never the caller's file object)."""
        if self._owned:
            await anyio.to_thread.run_sync(self._stream.close)


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _name_of(stream: object) -> str | None:
    name = getattr(stream, "name", None)
    if isinstance(name, str | os.PathLike):
        text = os.fspath(name)
        if isinstance(text, str) and text and not text.startswith("<"):
            return Path(text).name
    return None


def _open_path(path: str | os.PathLike[str]) -> tuple[IO[bytes], int]:
    target = Path(path)
    try:
        stream = target.open("rb")
    except OSError as exc:
        raise InvalidArgumentError(
            "file", f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}"
        ) from exc
    try:
        return stream, _regular_size(stream, path)
    except BaseException:
        stream.close()
        raise


def _regular_size(stream: IO[bytes], path: str | os.PathLike[str]) -> int:
    info = os.fstat(stream.fileno())
    if not stat.S_ISREG(info.st_mode):
        raise InvalidArgumentError("file", f"{os.fspath(path)!r} is not a regular file")
    return info.st_size


def _binary(chunk: object) -> bytes:
    if not isinstance(chunk, bytes | bytearray | memoryview):
        raise InvalidArgumentError("file", f"must be {_ALLOWED}; read() returned text")
    return bytes(chunk)


def _measure(stream: IO[bytes]) -> tuple[int, int]:
    start = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(start)
    return start, max(0, end - start)


def _spool(stream: IO[bytes]) -> tuple[IO[bytes], int]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - owned by the source
    try:
        size = 0
        while True:
            chunk = stream.read(CHUNK_SIZE)
            if not chunk:
                break
            spool.write(_binary(chunk))
            size += len(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size


async def open_source(file: FileInput, *, filename: str | None) -> UploadSource:
    """Open `file` for upload; unreadable input raises `InvalidArgumentError` naming `file`."""
    name = check_filename(filename) if filename is not None else None
    if isinstance(file, bytes | bytearray | memoryview):
        data = bytes(file)
        return UploadSource(
            io.BytesIO(data),
            start=0,
            size=len(data),
            filename=name or _DEFAULT_NAME,
            owned=True,
            in_memory=True,
        )
    if isinstance(file, str | os.PathLike):
        stream, size = await anyio.to_thread.run_sync(_open_path, file)
        return UploadSource(
            stream,
            start=0,
            size=size,
            filename=name or check_filename(Path(os.fspath(file)).name, "file"),
            owned=True,
            in_memory=False,
        )
    if isinstance(file, io.TextIOBase) or not callable(getattr(file, "read", None)):
        raise InvalidArgumentError("file", f"must be {_ALLOWED}, got {type(file).__name__}")
    name = name or _name_of(file) or _DEFAULT_NAME
    in_memory = isinstance(file, io.BytesIO)
    try:
        if _seekable(file):
            start, size = (
                _measure(file) if in_memory else await anyio.to_thread.run_sync(_measure, file)
            )
            return UploadSource(
                file, start=start, size=size, filename=name, owned=False, in_memory=in_memory
            )
        spool, size = await anyio.to_thread.run_sync(_spool, file)
    except OSError as exc:
        raise InvalidArgumentError("file", f"cannot read the file object: {exc}") from exc
    return UploadSource(spool, start=0, size=size, filename=name, owned=True, in_memory=False)
