"""Segments: one version of a file fetched as up to N concurrent byte ranges, each resumed on its own.

The download that owns the file supplies a `RangeSource` (`_range_source.PartRanges`): a way to
open a checked range (206, exact start, the known total, the same version) and to write a body into a
segment. This module decides which ranges to ask for, runs them concurrently, and counts each
segment's attempts on its own: a segment that makes progress clears its own count, a segment that
fails too often ends the download (its siblings are cancelled, every segment's progress is saved for
a resume).
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import anyio
import httpx

from ._download_options import DownloadOptions
from ._partfile import Segment
from ._retry import Attempts, Retryable

__all__ = ["RangeSource", "fetch_segments", "plan_segments", "segmentable"]

_log = logging.getLogger("_clientkit")


def segmentable(
    response: httpx.Response, total: int, options: DownloadOptions, *, has_validator: bool
) -> bool:
    """Whether the first response lets the rest come in segments.

    A checked 206 to our first range proves range support (most servers, nginx among them, name
    `Accept-Ranges` on 200s only); a strong validator (`has_validator`) keeps the segments one version.
    """
    accept = response.headers.get("accept-ranges", "").lower()
    return (
        options.segments > 1
        and total >= 2 * options.min_segment_size
        and (response.status_code == 206 or "bytes" in accept)
        and "none" not in accept
        and has_validator
    )


def plan_segments(total: int, segments: int, min_size: int) -> list[Segment]:
    """Split `total` bytes into at most `segments` ranges of at least `min_size` (one if it is smaller)."""
    count = max(1, min(segments, total // min_size))
    size = -(-total // count)
    return [Segment(start, min(total, start + size)) for start in range(0, total, size)]


class RangeSource(Protocol):
    """What a segmented fetch needs from the download it belongs to."""

    def open_range(
        self, first: int, last: int
    ) -> AbstractAsyncContextManager[tuple[httpx.Response, int]]:
        """A checked 206 for `bytes=first-last` and the last byte it carries; raises `Retryable` to retry."""
        ...

    async def write(self, response: httpx.Response, segment: Segment, stop: int) -> None:
        """Write the body at `segment.position` up to `stop` (exclusive), growing `segment.done`."""
        ...

    async def retry(self, attempts: Attempts, failure: Retryable, position: int) -> None:
        """Count a failed attempt that reached `position`: back off, or raise if none is left."""
        ...

    async def save(self) -> None:
        """Record every segment's progress (the sidecar)."""
        ...


async def fetch_segments(
    source: RangeSource,
    segments: list[Segment],
    *,
    concurrency: int,
    max_retries: int,
    first: httpx.Response | None = None,
) -> None:
    """Fetch every incomplete segment, at most `concurrency` at a time; the first error ends them all.

    `first`: an open, checked response that starts at byte 0 (the probe that proved range support);
    it serves the segment at 0, which asks first (the limiter is FIFO).
    """
    errors: list[BaseException] = []
    limiter = anyio.CapacityLimiter(concurrency)
    try:
        async with anyio.create_task_group() as tg:
            for segment in segments:
                if segment.complete:
                    continue
                opened = first if first is not None and segment.position == 0 else None

                async def one(
                    segment: Segment = segment, opened: httpx.Response | None = opened
                ) -> None:
                    try:
                        async with limiter:
                            await _fetch_one(source, segment, opened, max_retries)
                    except Exception as exc:
                        if not errors:
                            errors.append(exc)
                        tg.cancel_scope.cancel()

                tg.start_soon(one)
    finally:
        with anyio.CancelScope(shield=True):
            await source.save()
    if errors:
        raise errors[0]


async def _fetch_one(
    source: RangeSource, segment: Segment, opened: httpx.Response | None, max_retries: int
) -> None:
    attempts = Attempts(max_retries, mark=segment.done)
    while not segment.complete:
        before = segment.done
        try:
            if opened is not None:  # the checked first response, positioned at this segment
                response, opened = opened, None
                try:
                    await source.write(response, segment, segment.end)
                finally:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
            else:
                async with source.open_range(segment.position, segment.end - 1) as (response, last):
                    await source.write(response, segment, last + 1)
        except Retryable as failure:
            await source.retry(attempts, failure, segment.done)
            continue
        if segment.done == before:
            stalled = Retryable("a segment response ended without progress", request_sent=True)
            await source.retry(attempts, stalled, segment.done)
    await source.save()
