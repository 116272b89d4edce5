"""Resumable, verified, optionally segmented download of one URL to a local file (SPEC 2.6, ANCHORS 5.5).

On disk
    The body goes to `<name>.part` beside the final file; a sidecar `<...>.part.json` records the URL, the
    chosen name, the validator sent in If-Range (a strong ETag, else a strong Last-Modified, else none),
    the total size and, for a segmented download, each segment's progress. When the size checks out the
    `.part` is fsynced and renamed onto the final name with `os.replace` (atomic), the directory is
    fsynced, and the sidecar is removed.

Where the sidecar lives, and re-issued URLs
    See `_clientkit._resume`: one download per destination at a time; an existing final file is never
    replaced unless `overwrite=True`; a `.part` of another URL is discarded unless `reissue_of` names it.

Resume rules
    An existing `.part` of N bytes (with its sidecar) is resumed with `Range: bytes=N-` and `If-Range`.
    206 with Content-Range start N and the known total: append. A 206 whose start or total disagrees, whose
    Content-Length disagrees with its range, whose ETag (or Last-Modified) contradicts the If-Range
    value sent, or that carries a Content-Encoding: `DownloadFailure`, `.part` kept, nothing spliced.
    200: the server ignored the range or the file changed: truncate and start over. 416: its
    `*/total` equals N: done; else start over. A `.part` without a sidecar is not trusted (no validator):
    start over. Every request says `Accept-Encoding: identity` and the raw bytes are written.

Retries (`_request`)
    Connect failures (never sent), read failures and cut connections, 408, 429 and 5xx are retried with
    full-jitter backoff (Retry-After honoured); a cut connection resumes from the bytes on disk. The count
    is of consecutive attempts without progress (past the furthest point any earlier attempt reached),
    cleared by real progress and when the remote file changes (at most `_MAX_RESTARTS` times); then
    `TransportFailure(request_sent=...)` or `HTTPStatusFailure`. 401/403/410: `LinkExpiredFailure` at
    once; other statuses: `HTTPStatusFailure` at once. `DownloadOptions.deadline` bounds the whole call
    (`TransportFailure`). ENOSPC/EDQUOT: `DiskFullFailure`. httpx follows redirects and drops
    `Authorization` on a hop to another origin, so an `OriginAuth` credential stays on its origin.

Segments (`_segments`)
    With `segments > 1` a fresh download first asks for `bytes=0-<min_segment_size - 1>`; if the answer
    is a 206 (itself the proof of range support: most servers name `Accept-Ranges` on 200s only), with a
    strong validator and a total of at least `2 * min_segment_size`, the `.part` is preallocated and up
    to `segments` checked ranges are fetched concurrently (the first response starts the first one);
    otherwise the download goes on sequentially. The sidecar records each segment's progress
    (every `_CHECKPOINT_BYTES` and on exit), so a resume fetches only what is missing. A 200 to a
    segment means the file changed: start over.

Parts
    This module is the transfer: resume, the sequential fetch, the commit. `_resume` finds what an
    earlier call left, `_request` sends and classifies, `_segments` runs ranges, `_body.BodyWriter` reads
    (from the socket where it can) and writes, `_ranges.check_partial` checks each 206. The figures
    behind the read and write policy: B2's notes in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Final

import anyio
import httpx

from ._body import BodyWriter
from ._clock import Clock, SystemClock
from ._download_options import DownloadOptions
from ._failures import (
    DiskFullFailure,
    DownloadFailure,
    TransportFailure,
)
from ._partfile import (
    Layout,
    PartState,
    Segment,
    commit_part,
    open_part,
    unlink,
    write_sidecar,
)
from ._ranges import (
    PartialMismatch,
    check_partial,
    content_length,
    strong_validator,
    unsatisfied_total,
)
from ._request import Requester, safe_url
from ._resume import choose_name, find_part, layout_for, refuse_existing
from ._retry import Attempts, Retryable
from ._segments import fetch_segments, plan_segments, segmentable

__all__ = ["DownloadOptions", "download_file"]

_log = logging.getLogger("_clientkit")

_MIB: Final = 1024 * 1024
_MAX_RESTARTS: Final = 3
_CHECKPOINT_BYTES: Final = 32 * _MIB
_DISK_FULL: Final = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class _Restart(Exception):
    """The remote file is not the one the `.part` holds: start over from byte 0."""


class _Download:
    """One call of `download_file`: the state machine, its file descriptor and its counters."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        layout: Layout,
        *,
        auth: httpx.Auth | None,
        options: DownloadOptions,
        clock: Clock,
        progress: Callable[[int, int | None], object] | None,
        reissue_of: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self._url, self._url_text, self._layout = url, str(url), layout
        self._opts, self._clock, self._progress = options, clock, progress
        self._requests = Requester(
            client, url, auth=auth, options=options, clock=clock, part_path=self._part_text
        )
        self._name: str | None = layout.fixed_name
        self._state: PartState | None = None
        self._body: BodyWriter | None = None  # with the `.part`'s file descriptor, once open
        self._done = 0  # bytes of the current representation on disk
        self._since_checkpoint = 0
        self._sidecar_lock = anyio.Lock()
        self._reissue_of, self._overwrite = reissue_of, overwrite
        self._restarts = 0
        self._attempts = Attempts(options.max_retries)
        self._last_report = -math.inf

    async def run(self, *, resume: bool) -> pathlib.Path:
        deadline = self._opts.deadline
        try:
            with anyio.move_on_after(math.inf if deadline is None else deadline):
                return await self._run(resume=resume)
            raise TransportFailure(
                f"download of {safe_url(self._url)} did not finish within its deadline of "
                f"{deadline:g} s; {self._done} bytes are on disk",
                request_sent=True,
            )
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            total = self._state.total if self._state is not None else None
            raise DiskFullFailure(
                self._part_text() or str(self._layout.directory),
                None if total is None else max(total - self._done, 0),
            ) from exc

    async def _run(self, *, resume: bool) -> pathlib.Path:
        try:
            await self._prepare(resume=resume)
            while True:
                try:
                    await self._fetch()
                    break
                except _Restart as why:
                    self._changed(str(why))
                    await self._start_over()
            return await self._finish()
        finally:
            if self._body is not None:
                fd, self._body = self._body.fd, None
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(os.close, fd)

    def _changed(self, why: str) -> None:
        """The remote file changed: count it (a bounded number is tolerated) and reset the attempts."""
        self._restarts += 1
        if self._restarts > _MAX_RESTARTS:
            raise DownloadFailure(
                f"the remote file changed {self._restarts} times during the download",
                part_path=self._part_text(),
            )
        _log.debug("download restarts from byte 0", extra={"reason": why})
        self._attempts.new_representation()

    # -- resume preparation

    async def _prepare(self, *, resume: bool) -> None:
        found = await find_part(
            self._layout,
            self._url_text,
            reissue_of=self._reissue_of,
            resume=resume,
            overwrite=self._overwrite,
        )
        if found.name is not None:
            self._name = found.name
        state = found.state
        if state is None:
            return
        self._state = state
        await self._open_part(self._layout.part(state.name), truncate=False)
        self._done = found.done
        if found.rekey:
            # Re-keyed to the re-issued URL; recorded before the old sidecar goes.
            await self._save_state()
            if found.old_sidecar is not None:
                await anyio.to_thread.run_sync(unlink, found.old_sidecar)
            _log.debug(
                "resuming a download from a re-issued URL", extra={"bytes_on_disk": found.done}
            )
        _log.debug("resuming a download", extra={"bytes_on_disk": found.done, "total": state.total})

    async def _open_part(self, part: pathlib.Path, *, truncate: bool) -> None:
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

    async def _start_over(self) -> None:
        if self._body is not None:
            await anyio.to_thread.run_sync(os.ftruncate, self._body.fd, 0)
        self._done = 0
        if self._state is not None:
            self._state.validator = None
            self._state.total = None
            self._state.segments = None
            await self._save_state()

    # -- sequential

    async def _fetch(self) -> None:
        state = self._state
        if state is not None and state.segments is not None:
            await self._fetch_segments(state.segments, None)
            return
        attempts = self._attempts
        while True:
            offset = self._done
            headers = {"Accept-Encoding": "identity"}
            if offset > 0:
                headers["Range"] = f"bytes={offset}-"
                if self._state is not None and self._state.validator is not None:
                    headers["If-Range"] = self._state.validator
            elif self._opts.segments > 1:
                # A bounded probe: its 206 tells the total and range support, and closing it early
                # never throws away bytes in flight (an open `bytes=0-` would, a few MiB of them).
                headers["Range"] = f"bytes=0-{self._opts.min_segment_size - 1}"
            try:
                async with self._requests.open(headers) as response:
                    complete = await self._sequential(response, offset)
            except Retryable as failure:
                await self.retry(attempts, failure, self._done)
                continue
            if complete:
                return
            if not attempts.advanced(self._done):
                # A clean response that moved nothing (or only re-fetched bytes an earlier attempt
                # had): count it, so a stuck server cannot loop forever.
                stalled = Retryable("the response ended without progress", request_sent=True)
                await self.retry(attempts, stalled, self._done)

    async def _sequential(self, response: httpx.Response, offset: int) -> bool:
        """Handle one response to a sequential request; True when the file is complete on disk."""
        status = response.status_code
        state = self._state
        if status == 416:
            total = unsatisfied_total(response.headers.get("content-range"))
            known = state.total if state is not None else None
            if total is not None and total == offset and (known is None or known == total):
                if state is None:  # `bytes=0-` for an empty file
                    await self._adopt(response, total)
                else:
                    state.total = total
                self._report()
                return True
            if offset > 0:
                raise _Restart(f"416 with complete length {total}, but {offset} bytes are on disk")
        if status == 200:
            if offset > 0:
                _log.debug("200 to a range request: the file changed or ranges are ignored")
                seen = state.validator if state is not None else None
                if seen is not None and strong_validator(response.headers) != seen:
                    self._changed("a 200 with another validator: the file changed")
                await self._start_over()
            await self._adopt(response, content_length(response.headers))
            await self._write(response, 0, None, None)
        elif status == 206:
            _first, last, total = self._check_partial(response, offset, fresh=offset == 0)
            if offset == 0:  # a fresh representation (we asked for bytes=0-)
                await self._adopt(response, total)
                one_version = self._state is not None and self._state.validator is not None
                if total is not None and segmentable(
                    response, total, self._opts, has_validator=one_version
                ):
                    await self._begin_segments(response, total)
                    return True
            elif state is not None and total is not None and state.total is None:
                state.total = total
                await self._save_state()
            self._report()
            await self._write(response, offset, None, last + 1)
        else:
            await self._requests.raise_for_status(response)
        total = self._state.total if self._state is not None else None
        if total is None:
            return status == 200  # no length: a clean end of the body is the end of the file
        if self._done > total:
            raise DownloadFailure(
                f"size mismatch: {self._done} bytes on disk, the server said {total}",
                part_path=self._part_text(),
            )
        return self._done == total

    def _check_partial(
        self, response: httpx.Response, start: int, end: int | None = None, *, fresh: bool = False
    ) -> tuple[int, int, int | None]:
        """`check_partial` against the state (`fresh`: from byte 0 without If-Range, any total)."""
        state = None if fresh else self._state
        try:
            return check_partial(
                response.headers,
                start,
                end,
                sent=state.validator if state is not None else None,
                known=state.total if state is not None else None,
            )
        except PartialMismatch as exc:
            raise DownloadFailure(str(exc), part_path=self._part_text()) from None

    async def _adopt(self, response: httpx.Response, total: int | None) -> None:
        """Take a full (or from-zero) response as the file: name it, record it, open the `.part`."""
        validator = strong_validator(response.headers)
        if self._name is None:
            disposition = response.headers.get("content-disposition")
            content_type = response.headers.get("content-type")
            final_url = str(response.url)
            try:
                self._name = await anyio.to_thread.run_sync(
                    lambda: choose_name(
                        self._layout.directory, disposition, final_url, content_type
                    )
                )
            except ValueError as exc:  # e.g. a symlink in dest under the offered name
                raise DownloadFailure(f"refusing the file name: {exc}") from exc
            await refuse_existing(self._layout, self._name, overwrite=self._overwrite)
        if self._state is None:
            self._state = PartState(url=self._url_text, name=self._name)
        self._state.validator = validator
        self._state.total = total
        self._state.segments = None
        if self._body is None:
            await self._open_part(self._layout.part(self._name), truncate=True)
            self._done = 0
        await self._save_state()

    # -- segments (`_segments` runs them; this download is their `RangeSource`)

    async def _begin_segments(self, response: httpx.Response, total: int) -> None:
        state, body = self._state, self._body
        assert state is not None  # noqa: S101 (adopted just before)
        assert body is not None  # noqa: S101
        state.segments = plan_segments(total, self._opts.segments, self._opts.min_segment_size)
        await anyio.to_thread.run_sync(os.ftruncate, body.fd, total)
        await self._save_state()
        _log.debug("segmented download", extra={"segments": len(state.segments), "total": total})
        await self._fetch_segments(state.segments, response)

    async def _fetch_segments(self, segments: list[Segment], first: httpx.Response | None) -> None:
        self._report()
        await fetch_segments(
            self,
            segments,
            concurrency=self._opts.segments,
            max_retries=self._opts.max_retries,
            first=first,
        )

    @contextlib.asynccontextmanager
    async def open_range(self, first: int, last: int) -> AsyncIterator[tuple[httpx.Response, int]]:
        """A checked 206 for one segment (a 200 means the file changed: start over)."""
        assert self._state is not None  # noqa: S101
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={first}-{last}"}
        if self._state.validator is not None:
            headers["If-Range"] = self._state.validator
        async with self._requests.open(headers) as response:
            if response.status_code == 200:
                raise _Restart("200 to a segment request: the file changed")
            if response.status_code != 206:
                await self._requests.raise_for_status(response)
            _, end, _ = self._check_partial(response, first, last)
            yield response, end

    async def write(self, response: httpx.Response, segment: Segment, stop: int) -> None:
        """Write a segment's body (`RangeSource`)."""
        await self._write(response, segment.position, segment, stop)

    async def save(self) -> None:
        """Record every segment's progress (`RangeSource`)."""
        self._since_checkpoint = 0
        await self._save_state()

    # -- the body and its accounting

    async def _write(
        self, response: httpx.Response, position: int, segment: Segment | None, stop: int | None
    ) -> None:
        body = self._body
        assert body is not None  # noqa: S101 (a response is written only once the `.part` is open)

        async def wrote(size: int) -> None:
            self._done += size
            if segment is not None:
                segment.done += size
                self._since_checkpoint += size
            self._report()
            if segment is not None and self._since_checkpoint >= _CHECKPOINT_BYTES:
                self._since_checkpoint = 0
                await self._save_state()

        await body.write_body(response, position=position, stop=stop, wrote=wrote)

    def _report_due(self) -> bool:
        """True when the progress callback has not been called for a while (bytes wait in memory)."""
        return (
            self._progress is not None
            and self._clock.monotonic() - self._last_report >= self._opts.progress_interval
        )

    def _report(self) -> None:
        if self._progress is not None:
            self._last_report = self._clock.monotonic()
            self._progress(self._done, self._state.total if self._state is not None else None)

    async def _save_state(self) -> None:
        if self._state is None:
            return
        data = self._state.to_json()
        async with self._sidecar_lock:
            await anyio.to_thread.run_sync(
                write_sidecar, self._layout.sidecar, data, self._opts.fsync
            )

    async def retry(self, attempts: Attempts, failure: Retryable, position: int) -> None:
        """Count a failed attempt that reached `position`: back off, or raise if none is left."""
        await self._requests.retry(attempts, failure, position, on_disk=self._done)

    # -- the end

    async def _finish(self) -> pathlib.Path:
        state, body = self._state, self._body
        assert state is not None  # noqa: S101 (a completed fetch always adopted a response)
        assert body is not None  # noqa: S101
        size = (await anyio.to_thread.run_sync(os.fstat, body.fd)).st_size
        if state.total is not None and (size != state.total or self._done != state.total):
            raise DownloadFailure(
                f"size mismatch: {size} bytes on disk, the server said {state.total}",
                part_path=self._part_text(),
            )
        self._body = None
        part, final = self._layout.part(state.name), self._layout.final(state.name)
        # One worker-thread hop for the whole commit (a hop costs more CPU than a small file's body).
        await anyio.to_thread.run_sync(
            commit_part, body.fd, part, final, self._layout.sidecar, self._opts.fsync
        )
        _log.debug("download complete", extra={"bytes": size})
        return final

    def _part_text(self) -> str | None:
        return str(self._layout.part(self._name)) if self._name is not None else None


async def download_file(
    client: httpx.AsyncClient,
    url: str,
    dest: str | os.PathLike[str],
    *,
    auth: httpx.Auth | None = None,
    resume: bool = True,
    progress: Callable[[int, int | None], object] | None = None,
    options: DownloadOptions | None = None,
    clock: Clock | None = None,
    reissue_of: str | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Download `url` to `dest` (a file path, or a directory the server names the file in); the final path.

    `dest` is a directory when it names one or ends with a path separator (created if missing:
    `"out/"`); otherwise it is the file path. An existing final file is never replaced unless
    `overwrite=True` (`DestinationExistsFailure`, raised before any request when `dest` is a file).
    Resumes a `.part` left by an earlier call (unless `resume=False`), verifies the size, fsyncs and
    renames atomically. `reissue_of`: `url` is a fresh link to the same file as this earlier URL (an
    expired signed link): a `.part` left by the earlier URL is resumed if its sidecar holds a strong
    validator, which every range request then carries in If-Range. `auth` runs on the first request (an
    `OriginAuth` keeps the credential on its origin; httpx drops it on a redirect elsewhere); None
    uses the client's own auth. `progress(done, total_or_None)` is called as bytes land, at least every
    `options.progress_interval` while they flow: non-decreasing, except that it restarts from 0 if
    the remote file changed. Raises `TransportFailure`, `DownloadFailure` or its subclasses
    `HTTPStatusFailure` (`LinkExpiredFailure` for 401/403/410, never retried), `DiskFullFailure`,
    `DestinationExistsFailure`; a `.part` is kept for a later resume. See the module docstring.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError("url must be an absolute http:// or https:// URL") from exc
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError("url must be an absolute http:// or https:// URL")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a callable taking (done_bytes, total_bytes_or_None)")
    earlier = None
    if reissue_of is not None:
        try:
            earlier = str(httpx.URL(reissue_of))
        except (httpx.InvalidURL, TypeError) as exc:
            raise ValueError("reissue_of must be the earlier URL of the file, or None") from exc
    opts = options if options is not None else DownloadOptions()
    layout = await anyio.to_thread.run_sync(layout_for, os.fspath(dest), str(parsed))
    download = _Download(
        client,
        parsed,
        layout,
        auth=auth,
        options=opts,
        clock=clock if clock is not None else SystemClock(),
        progress=progress,
        reissue_of=earlier,
        overwrite=overwrite,
    )
    return await download.run(resume=resume)
