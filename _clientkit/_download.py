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
    otherwise the download goes on sequentially. The sidecar records each segment's progress (every
    `_open_part.CHECKPOINT_BYTES` and on exit), so a resume fetches only what is missing. A 200 to a
    segment means the file changed: start over.

Parts
    This module is the transfer: the attempt loop, the sequential fetch and what each answer means.
    `_resume` finds what an earlier call left; `_open_part.OpenPart` keeps the `.part`, its sidecar
    and its byte count, and commits; `_request` sends and classifies; `_segments` runs ranges over
    `_range_source.PartRanges`; `_body.BodyWriter` reads (from the socket where it can) and writes;
    `_ranges.check_partial` checks each 206. The figures behind the read and write policy: B2's notes
    in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import pathlib
from collections.abc import Callable
from typing import Final

import anyio
import httpx

from ._clock import Clock, SystemClock
from ._download_options import DownloadOptions
from ._failures import DiskFullFailure, DownloadFailure, TransportFailure
from ._open_part import OpenPart
from ._partfile import Layout, Segment, unlink
from ._range_source import PartRanges, RemoteChanged
from ._ranges import content_length, strong_validator, unsatisfied_total
from ._request import Requester, safe_url
from ._resume import find_part, layout_for
from ._retry import Attempts, Retryable
from ._segments import fetch_segments, plan_segments, segmentable

__all__ = ["DownloadOptions", "download_file"]

_log = logging.getLogger("_clientkit")

_MAX_RESTARTS: Final = 3
_DISK_FULL: Final = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class _Download:
    """One call of `download_file`: the attempts, the answers and what they mean for the `.part`."""

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
        self._opts = options
        self._part = OpenPart(
            layout,
            self._url_text,
            options=options,
            clock=clock,
            progress=progress,
            overwrite=overwrite,
        )
        self._requests = Requester(
            client, url, auth=auth, options=options, clock=clock, part_path=self._part.part_text
        )
        self._reissue_of, self._overwrite = reissue_of, overwrite
        self._restarts = 0
        self._attempts = Attempts(options.max_retries)

    async def run(self, *, resume: bool) -> pathlib.Path:
        deadline = self._opts.deadline
        try:
            with anyio.move_on_after(math.inf if deadline is None else deadline):
                return await self._run(resume=resume)
            raise TransportFailure(
                f"download of {safe_url(self._url)} did not finish within its deadline of "
                f"{deadline:g} s; {self._part.done} bytes are on disk",
                request_sent=True,
            )
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            total = self._part.total
            raise DiskFullFailure(
                self._part.part_text() or str(self._layout.directory),
                None if total is None else max(total - self._part.done, 0),
            ) from exc

    async def _run(self, *, resume: bool) -> pathlib.Path:
        try:
            await self._prepare(resume=resume)
            while True:
                try:
                    await self._fetch()
                    break
                except RemoteChanged as why:
                    self._changed(str(why))
                    await self._part.start_over()
            return await self._part.commit()
        finally:
            await self._part.close()

    def _changed(self, why: str) -> None:
        """The remote file changed: count it (a bounded number is tolerated) and reset the attempts."""
        self._restarts += 1
        if self._restarts > _MAX_RESTARTS:
            raise DownloadFailure(
                f"the remote file changed {self._restarts} times during the download",
                part_path=self._part.part_text(),
            )
        _log.debug("download restarts from byte 0", extra={"reason": why})
        self._attempts.new_representation()

    async def _prepare(self, *, resume: bool) -> None:
        """Find what an earlier call left for this destination, and resume it if it is trusted."""
        found = await find_part(
            self._layout,
            self._url_text,
            reissue_of=self._reissue_of,
            resume=resume,
            overwrite=self._overwrite,
        )
        if found.name is not None:
            self._part.name = found.name
        state = found.state
        if state is None:
            return
        await self._part.resume(state, found.done)
        if found.rekey:
            # Re-keyed to the re-issued URL; recorded before the old sidecar goes.
            await self._part.save()
            if found.old_sidecar is not None:
                await anyio.to_thread.run_sync(unlink, found.old_sidecar)
            _log.debug(
                "resuming a download from a re-issued URL", extra={"bytes_on_disk": found.done}
            )
        _log.debug("resuming a download", extra={"bytes_on_disk": found.done, "total": state.total})

    # -- sequential

    async def _fetch(self) -> None:
        part = self._part
        if part.state is not None and part.state.segments is not None:
            await self._fetch_segments(part.state.segments, None)
            return
        attempts = self._attempts
        while True:
            offset = part.done
            headers = {"Accept-Encoding": "identity"}
            if offset > 0:
                headers["Range"] = f"bytes={offset}-"
                if part.validator is not None:
                    headers["If-Range"] = part.validator
            elif self._opts.segments > 1:
                # A bounded probe: its 206 tells the total and range support, and closing it early
                # never throws away bytes in flight (an open `bytes=0-` would, a few MiB of them).
                headers["Range"] = f"bytes=0-{self._opts.min_segment_size - 1}"
            try:
                async with self._requests.open(headers) as response:
                    complete = await self._sequential(response, offset)
            except Retryable as failure:
                await self._retry(attempts, failure)
                continue
            if complete:
                return
            if not attempts.advanced(part.done):
                # A clean response that moved nothing (or only re-fetched bytes an earlier attempt
                # had): count it, so a stuck server cannot loop forever.
                stalled = Retryable("the response ended without progress", request_sent=True)
                await self._retry(attempts, stalled)

    async def _sequential(self, response: httpx.Response, offset: int) -> bool:
        """Handle one response to a sequential request; True when the file is complete on disk."""
        status = response.status_code
        part = self._part
        state = part.state
        if status == 416:
            total = unsatisfied_total(response.headers.get("content-range"))
            known = state.total if state is not None else None
            if total is not None and total == offset and (known is None or known == total):
                if state is None:  # `bytes=0-` for an empty file
                    await part.adopt(response, total)
                else:
                    state.total = total
                part.report()
                return True
            if offset > 0:
                raise RemoteChanged(
                    f"416 with complete length {total}, but {offset} bytes are on disk"
                )
        if status == 200:
            if offset > 0:
                _log.debug("200 to a range request: the file changed or ranges are ignored")
                seen = state.validator if state is not None else None
                if seen is not None and strong_validator(response.headers) != seen:
                    self._changed("a 200 with another validator: the file changed")
                await part.start_over()
            await part.adopt(response, content_length(response.headers))
            await part.write(response, 0, None, None)
        elif status == 206:
            _first, last, total = part.check_partial(response, offset, fresh=offset == 0)
            if offset == 0:  # a fresh representation (we asked for bytes=0-)
                await part.adopt(response, total)
                one_version = part.validator is not None
                if total is not None and segmentable(
                    response, total, self._opts, has_validator=one_version
                ):
                    await self._begin_segments(response, total)
                    return True
            elif state is not None and total is not None and state.total is None:
                state.total = total
                await part.save()
            part.report()
            await part.write(response, offset, None, last + 1)
        else:
            await self._requests.raise_for_status(response)
        total = part.total
        if total is None:
            return status == 200  # no length: a clean end of the body is the end of the file
        if part.done > total:
            raise DownloadFailure(
                f"size mismatch: {part.done} bytes on disk, the server said {total}",
                part_path=part.part_text(),
            )
        return part.done == total

    # -- segments (`_segments` runs them over the `PartRanges` of the `.part`)

    async def _begin_segments(self, response: httpx.Response, total: int) -> None:
        segments = plan_segments(total, self._opts.segments, self._opts.min_segment_size)
        await self._part.preallocate(segments, total)
        _log.debug("segmented download", extra={"segments": len(segments), "total": total})
        await self._fetch_segments(segments, response)

    async def _fetch_segments(self, segments: list[Segment], first: httpx.Response | None) -> None:
        self._part.report()
        await fetch_segments(
            PartRanges(self._requests, self._part),
            segments,
            concurrency=self._opts.segments,
            max_retries=self._opts.max_retries,
            first=first,
        )

    async def _retry(self, attempts: Attempts, failure: Retryable) -> None:
        """Count a failed sequential attempt: back off, or raise if none is left."""
        done = self._part.done
        await self._requests.retry(attempts, failure, done, on_disk=done)


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
