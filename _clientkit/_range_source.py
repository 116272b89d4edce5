"""The ranges of one download's file, for its segments: each range request sent, checked and written.

`PartRanges` is the `RangeSource` that `_segments.fetch_segments` runs: it asks for `bytes=first-last`
with the recorded validator in If-Range, checks the 206 against the `.part`'s record (exact start, the
known total, the same version), writes each body into its segment and records progress. A 200 to a
range request means the remote file changed: `RemoteChanged`, and the download starts over.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from ._open_part import OpenPart
from ._partfile import Segment
from ._request import Requester
from ._retry import Attempts, Retryable

__all__ = ["PartRanges", "RemoteChanged"]


class RemoteChanged(Exception):
    """The remote file is not the one the `.part` holds: start over from byte 0."""


class PartRanges:
    """Byte ranges of the file an `OpenPart` holds, fetched through a download's `Requester`."""

    def __init__(self, requests: Requester, part: OpenPart) -> None:
        self._requests, self._part = requests, part

    @contextlib.asynccontextmanager
    async def open_range(self, first: int, last: int) -> AsyncIterator[tuple[httpx.Response, int]]:
        """A checked 206 for one segment (a 200 means the file changed: start over)."""
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={first}-{last}"}
        validator = self._part.validator
        if validator is not None:
            headers["If-Range"] = validator
        async with self._requests.open(headers) as response:
            if response.status_code == 200:
                raise RemoteChanged("200 to a segment request: the file changed")
            if response.status_code != 206:
                await self._requests.raise_for_status(response)
            _, end, _ = self._part.check_partial(response, first, last)
            yield response, end

    async def write(self, response: httpx.Response, segment: Segment, stop: int) -> None:
        """Write a segment's body at its position, up to `stop` (exclusive)."""
        await self._part.write(response, segment.position, segment, stop)

    async def retry(self, attempts: Attempts, failure: Retryable, position: int) -> None:
        """Count a failed attempt that reached `position`: back off, or raise if none is left."""
        await self._requests.retry(attempts, failure, position, on_disk=self._part.done)

    async def save(self) -> None:
        """Record every segment's progress (the sidecar)."""
        await self._part.checkpoint()
