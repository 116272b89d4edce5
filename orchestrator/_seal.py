"""The upload seal: a staged input's bytes are served only once its UploadMedia answer is in the journal.

ListMedia names no source, so media created by an upload whose answer was lost cannot be told apart from
the media of other uploads in flight. The seal removes the need to: while an input's upload is open, the
staging server holds the service's fetch of it, and releases it when the answer (the file_id) has been
committed. The journal counts each fetch before a byte is served, so after a crash an open upload whose
fetch count is 0 never had a byte served, and its media, if the service made any, can only fail: the
rerun uploads the input again under a new URL (the old one is never served again) and deletes the
orphans (`_orphans.py`). That holds for any number of uploads in flight, with no help from the service.

It needs a service that answers UploadMedia before it fetches (the document says the service is told "to
download a supplied link", and calls back "once the upload and analyzing" is done). A service that
fetches first would wait for the answer forever: a fetch held `hold` seconds is served after all, the
seal is broken for that upload (its fetch is counted while it is open, so reconciliation knows), and the
batch learns `FetchTiming.BEFORE_ANSWER`: from then on no fetch is held and uploads go one at a time. Until the first upload
of a run has been answered without a held fetch timing out, uploads go one at a time too.
"""

from __future__ import annotations

import logging
from enum import StrEnum

import anyio

__all__ = ["FetchTiming", "UploadSeal"]

log = logging.getLogger("orchestrator")


class FetchTiming(StrEnum):
    """When the service fetches an input, relative to its answer to UploadMedia."""

    AFTER_ANSWER = "after-answer"  # the seal holds: uploads may share the wire
    BEFORE_ANSWER = "before-answer"  # a held fetch timed out: uploads go one at a time


class UploadSeal:
    """Holds fetches of staged inputs whose uploads are open; see the module docstring."""

    def __init__(self, *, hold: float) -> None:
        if not (isinstance(hold, int | float) and 0 < hold < float("inf")):
            raise ValueError(f"hold must be a finite number of seconds > 0, got {hold!r}")
        self._hold = float(hold)
        self._open: dict[
            str, anyio.Event
        ] = {}  # token -> set when its fetch may go ahead (or never)
        self._refused: set[str] = set()
        self._broken: set[str] = set()  # fetched while open (held too long): the seal did not hold
        self.timing: FetchTiming | None = None

    def __repr__(self) -> str:
        timing = self.timing.value if self.timing else "unknown"
        return f"<UploadSeal open={len(self._open)} timing={timing}>"

    @property
    def shares_the_wire(self) -> bool:
        """True once the service is known to answer before it fetches (uploads may overlap)."""
        return self.timing is FetchTiming.AFTER_ANSWER

    def expect(self, token: str) -> None:
        """An upload of the input staged under `token` is about to be sent: hold its fetches."""
        self._open[token] = anyio.Event()
        self._refused.discard(token)
        self._broken.discard(token)

    def answered(self, token: str) -> None:
        """The upload's answer is committed: its fetches go ahead (held ones at once)."""
        event = self._open.pop(token, None)
        if event is not None:
            event.set()
        if self.timing is None and token not in self._broken:
            self.timing = FetchTiming.AFTER_ANSWER
            log.info("the service answers UploadMedia before fetching: uploads may overlap")

    def refuse(self, token: str) -> bool:
        """The upload's answer is lost: never serve its fetches. False if a fetch was already let
        through (the seal was broken for it), so its media may complete and must be reconciled."""
        if token in self._broken:
            self._open.pop(token, None)
            return False
        self._refused.add(token)
        event = self._open.pop(token, None)
        if event is not None:
            event.set()
        return True

    def broken(self, token: str) -> bool:
        """True when a fetch of `token` was served while its upload was open."""
        return token in self._broken

    async def admit(self, token: str) -> bool:
        """Wait until the fetch of `token` may be served: True to serve it, False to refuse it."""
        if token in self._refused:
            return False
        event = self._open.get(token)
        if event is None:
            return True
        if self.timing is FetchTiming.BEFORE_ANSWER:  # its answer waits for these bytes: no hold
            self._broken.add(token)
            return True
        with anyio.move_on_after(self._hold):
            await event.wait()
        if token in self._refused:
            return False
        if (
            self._open.get(token) is event
        ):  # still open after `hold`: the service waits for the bytes
            self._broken.add(token)
            if self.timing is not FetchTiming.BEFORE_ANSWER:
                self.timing = FetchTiming.BEFORE_ANSWER
                log.warning(
                    "the service fetches inputs before it answers UploadMedia: uploads go one at a time"
                )
        return True
