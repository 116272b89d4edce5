"""The transfer: one item's result downloaded to its output path, resumed from disk, its link renewed.

An expired link (401/403/410 on the result's URL) is replaced by a fresh one from GetProgress, and the
download resumes from the bytes on disk with `reissue_of` (the `.part`'s validator checked with If-Range).
The fresh link is kept in memory until the download completes: the `.part`'s sidecar names the link it was
started with, and a rerun after a crash starts from the journal's link, whose expiry leads here again with
the right `reissue_of`. A download that cannot get a working link is `Unfinished`: the item stops where it
stands, its media kept.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio.to_thread
import attrs

from ._events import DownloadProgress
from ._inputs import size_and_sha256
from ._scheduler import Priority
from ._service import ItemError, LinkExpiredError, Phase, RemoteStatus, ServiceAdapter

if TYPE_CHECKING:
    from _clientkit._clock import Clock

    from ._effects import Gate
    from ._stages import Item

__all__ = ["Fetched", "Transfer", "Unfinished", "raise_for"]

log = logging.getLogger("orchestrator")

# fresh links asked for in one download before the item is left resumable
_LINK_REFRESHES: Final = 4


class Unfinished(Exception):
    """A step kept failing for reasons on our side (network, a link): the item stops, resumable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@attrs.frozen
class Fetched:
    """A finished download: where it is, its size and checksum, and the link it came from."""

    path: Path
    size: int
    sha256: str
    url: str


def raise_for(status: RemoteStatus) -> None:
    """Fail the item with what the service reports (a failure, or media it no longer knows)."""
    if status.phase is Phase.GONE:
        raise ItemError("MediaGone", "the service no longer knows this media")
    raise ItemError(
        status.error_code or "RemoteFailure",
        status.error_message or f"the service reports {status.state or status.phase.value}",
    )


class Transfer:
    """Downloads results through the gate (see the module docstring)."""

    def __init__(self, adapter: ServiceAdapter, gate: Gate, clock: Clock) -> None:
        self._adapter = adapter
        self._gate = gate
        self._clock = clock
        self._links: dict[str, tuple[str, str | None]] = {}  # a fresh link and the one it replaces

    async def fetch(self, item: Item, url: str, *, on_bytes: list[int]) -> Fetched:
        """Download `url` to the item's output path; `on_bytes[0]` follows the bytes on disk."""
        dest = Path(item.output_path)
        halfway = [False]

        def progress(done: int, total: int | None) -> None:
            on_bytes[0] = done
            if not halfway[0] and total and done * 2 >= total and done < total:
                halfway[0] = True
                self._gate.checkpoint(f"download {item.key} halfway")
            self._gate.emit_nowait(
                DownloadProgress(key=item.key, done=done, total=total, at=self._clock.monotonic())
            )

        url, reissue_of = self._links.get(item.key, (url, None))
        for _ in range(_LINK_REFRESHES):
            try:
                # (an adapter whose links never expire need not take `reissue_of`)
                again = {} if reissue_of is None else {"reissue_of": reissue_of}
                path: Path = await self._gate.call(
                    None, self._adapter.download, url, dest, progress=progress, **again
                )
            except LinkExpiredError:
                log.info("download link expired; asking for a fresh one", extra={"item": item.key})
                url, reissue_of = await self._fresh_link(item), url
                self._links[item.key] = (url, reissue_of)
            else:
                self._links.pop(item.key, None)
                size, digest = await anyio.to_thread.run_sync(size_and_sha256, path)
                return Fetched(path, size, digest, url)
        raise Unfinished("LinkExpired", "every fresh download link expired at once")

    async def _fresh_link(self, item: Item) -> str:
        """A new download link for the item's result, from GetProgress (the media's own state)."""
        assert item.remote_id is not None  # noqa: S101 - a restored item has media
        status = await self._gate.call(Priority.FINISH, self._adapter.status, item.remote_id)
        if status.phase is Phase.RESTORED and status.result_url:
            return status.result_url
        if status.phase is Phase.GONE:
            raise_for(status)
        raise Unfinished(
            "LinkExpired", f"no fresh download link (the service reports {status.phase})"
        )
