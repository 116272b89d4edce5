"""The `.part` of one running download: what it holds, how bytes land in it, and its commit.

`OpenPart` owns the `.part`'s file descriptor (through a `BodyWriter`), the sidecar record (`PartState`:
the name, the validator, the total, each segment's progress), the count of bytes of the current
representation on disk, the progress callback and the sidecar checkpoints. The download decides what
to ask for (`_download`, `_segments`); this class keeps the disk and the record in step with what
arrived, and at the end verifies the size and commits (fsync, atomic rename, sidecar removed).
"""

from __future__ import annotations

import logging
import math
import os
import pathlib
from collections.abc import Callable
from typing import Final

import anyio
import httpx

from ._body import BodyWriter
from ._clock import Clock
from ._download_options import DownloadOptions
from ._failures import DownloadFailure
from ._partfile import Layout, PartState, Segment, commit_part, open_part, write_sidecar
from ._ranges import PartialMismatch, check_partial, strong_validator
from ._resume import choose_name, refuse_existing

__all__ = ["CHECKPOINT_BYTES", "OpenPart"]

_log = logging.getLogger("_clientkit")

_MIB: Final = 1024 * 1024
CHECKPOINT_BYTES: Final = 32 * _MIB  # a segmented download records its progress this often


class OpenPart:
    """The `.part` file of one download while it runs, its sidecar record and its byte count.

    `state` is None until a response is adopted (or an earlier `.part` resumed); `done` counts the
    bytes of the current representation on disk.
    """

    def __init__(
        self,
        layout: Layout,
        url_text: str,
        *,
        options: DownloadOptions,
        clock: Clock,
        progress: Callable[[int, int | None], object] | None,
        overwrite: bool,
    ) -> None:
        self._layout, self._url_text = layout, url_text
        self._opts, self._clock, self._progress = options, clock, progress
        self._overwrite = overwrite
        self.name: str | None = layout.fixed_name
        self.state: PartState | None = None
        self.done = 0
        self._body: BodyWriter | None = None  # with the `.part`'s file descriptor, once open
        self._since_checkpoint = 0
        self._sidecar_lock = anyio.Lock()
        self._last_report = -math.inf

    @property
    def total(self) -> int | None:
        """The size of the file, once a response told it."""
        return self.state.total if self.state is not None else None

    @property
    def validator(self) -> str | None:
        """The strong validator every range request carries in If-Range, if the server gave one."""
        return self.state.validator if self.state is not None else None

    def part_text(self) -> str | None:
        """The `.part`'s path for messages, once the file has a name."""
        return str(self._layout.part(self.name)) if self.name is not None else None

    def check_partial(
        self, response: httpx.Response, start: int, end: int | None = None, *, fresh: bool = False
    ) -> tuple[int, int, int | None]:
        """`check_partial` against the record (`fresh`: from byte 0 without If-Range, any total)."""
        state = None if fresh else self.state
        try:
            return check_partial(
                response.headers,
                start,
                end,
                sent=state.validator if state is not None else None,
                known=state.total if state is not None else None,
            )
        except PartialMismatch as exc:
            raise DownloadFailure(str(exc), part_path=self.part_text()) from None

    # -- opening

    async def resume(self, state: PartState, done: int) -> None:
        """Continue an earlier call's `.part` (`done` bytes of it are good)."""
        self.state = state
        await self._open(self._layout.part(state.name), truncate=False)
        self.done = done

    async def adopt(self, response: httpx.Response, total: int | None) -> None:
        """Take a full (or from-zero) response as the file: name it, record it, open the `.part`."""
        validator = strong_validator(response.headers)
        if self.name is None:
            disposition = response.headers.get("content-disposition")
            content_type = response.headers.get("content-type")
            final_url = str(response.url)
            directory = self._layout.directory
            try:
                self.name = await anyio.to_thread.run_sync(
                    lambda: choose_name(directory, disposition, final_url, content_type)
                )
            except ValueError as exc:  # e.g. a symlink in dest under the offered name
                raise DownloadFailure(f"refusing the file name: {exc}") from exc
            await refuse_existing(self._layout, self.name, overwrite=self._overwrite)
        if self.state is None:
            self.state = PartState(url=self._url_text, name=self.name)
        self.state.validator = validator
        self.state.total = total
        self.state.segments = None
        if self._body is None:
            await self._open(self._layout.part(self.name), truncate=True)
            self.done = 0
        await self.save()

    async def _open(self, part: pathlib.Path, *, truncate: bool) -> None:
        fd = await anyio.to_thread.run_sync(lambda: open_part(part, truncate=truncate))
        opts = self._opts
        self._body = BodyWriter(
            fd,
            chunk_size=opts.chunk_size,
            timeout=opts.timeout,
            direct_read=opts.direct_read,
            fsync=opts.fsync,
            flush_due=self._report_due,
        )

    async def start_over(self) -> None:
        """Empty the `.part` and forget the representation it held (the remote file changed)."""
        if self._body is not None:
            await anyio.to_thread.run_sync(os.ftruncate, self._body.fd, 0)
        self.done = 0
        if self.state is not None:
            self.state.validator = None
            self.state.total = None
            self.state.segments = None
            await self.save()

    async def preallocate(self, segments: list[Segment], total: int) -> None:
        """Size the `.part` to the whole file (`total` bytes) and record the segments that fill it."""
        state, body = self.state, self._body
        assert state is not None  # noqa: S101 (adopted just before)
        assert body is not None  # noqa: S101
        state.segments = segments
        await anyio.to_thread.run_sync(os.ftruncate, body.fd, total)
        await self.save()

    # -- the bytes and their accounting

    async def write(
        self, response: httpx.Response, position: int, segment: Segment | None, stop: int | None
    ) -> None:
        """Write a response's body at `position` (up to `stop`), counting it (and `segment`'s share)."""
        body = self._body
        assert body is not None  # noqa: S101 (a response is written only once the `.part` is open)

        async def wrote(size: int) -> None:
            self.done += size
            if segment is not None:
                segment.done += size
                self._since_checkpoint += size
            self.report()
            if segment is not None and self._since_checkpoint >= CHECKPOINT_BYTES:
                self._since_checkpoint = 0
                await self.save()

        await body.write_body(response, position=position, stop=stop, wrote=wrote)

    def _report_due(self) -> bool:
        """True when the progress callback has not been called for a while (bytes wait in memory)."""
        return (
            self._progress is not None
            and self._clock.monotonic() - self._last_report >= self._opts.progress_interval
        )

    def report(self) -> None:
        """Call the progress callback with the bytes on disk and the total (if known)."""
        if self._progress is not None:
            self._last_report = self._clock.monotonic()
            self._progress(self.done, self.total)

    async def save(self) -> None:
        """Write the sidecar record (one writer at a time)."""
        if self.state is None:
            return
        data = self.state.to_json()
        async with self._sidecar_lock:
            await anyio.to_thread.run_sync(
                write_sidecar, self._layout.sidecar, data, self._opts.fsync
            )

    async def checkpoint(self) -> None:
        """Record every segment's progress now (and restart the count to the next checkpoint)."""
        self._since_checkpoint = 0
        await self.save()

    # -- the end

    async def commit(self) -> pathlib.Path:
        """Verify the size, fsync, rename onto the final name and drop the sidecar; the final path."""
        state, body = self.state, self._body
        assert state is not None  # noqa: S101 (a completed fetch always adopted a response)
        assert body is not None  # noqa: S101
        size = (await anyio.to_thread.run_sync(os.fstat, body.fd)).st_size
        if state.total is not None and (size != state.total or self.done != state.total):
            raise DownloadFailure(
                f"size mismatch: {size} bytes on disk, the server said {state.total}",
                part_path=self.part_text(),
            )
        self._body = None
        part, final = self._layout.part(state.name), self._layout.final(state.name)
        # One worker-thread hop for the whole commit (a hop costs more CPU than a small file's body).
        await anyio.to_thread.run_sync(
            commit_part, body.fd, part, final, self._layout.sidecar, self._opts.fsync
        )
        _log.debug("download complete", extra={"bytes": size})
        return final

    async def close(self) -> None:
        """Close the `.part`'s descriptor unless the commit took it (shielded: runs on the way out)."""
        if self._body is not None:
            fd, self._body = self._body.fd, None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(os.close, fd)
