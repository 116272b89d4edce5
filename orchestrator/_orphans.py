"""Orphans: media that sealed uploads with lost answers may have made, found and deleted.

An upload whose answer was lost while its input's fetch was still held (`_seal.py`) is given up: the
input goes up again under a new URL, and the old URL is never served. Its token is written to the journal
(`lost_uploads`) first. Media such an upload made can never be analysed (its bytes were never served),
so it fails. Once no upload is open, the sweeper lists the account: the media a callback to a lost
upload's own URL named is deleted; of the rest, media that is neither the batch's own nor in the
baseline and that the service failed is deleted when there is no more of it than lost uploads without
such a callback (each lost upload made at most one). Media that got further (analysed, restored) is
someone else's; more failed media than lost uploads means someone else's is among it, and all of it is
left alone. Nothing that can be paid work is ever deleted: an orphan never got past its fetch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import anyio
import attrs

from ._scheduler import Priority
from ._service import Phase, RemoteStatus, ServiceAdapter, list_media

if TYPE_CHECKING:
    from _clientkit._clock import Clock

    from ._effects import Gate
    from ._stages import Item

__all__ = ["LOST_UPLOADS", "OrphanSweeper", "Orphans", "judge_orphans"]

log = logging.getLogger("orchestrator")

LOST_UPLOADS: Final = "lost_uploads"
"""Journal meta: `[[token, wall time], ...]` of sealed uploads given up after a lost answer."""

_LOOKS: Final = (
    6  # looks at media still being ingested (about one a settle interval / 4) before giving up
)


@attrs.frozen
class Orphans:
    """What a look at the account concluded: media to delete, and whether to look again later."""

    doomed: tuple[str, ...] = ()
    undecided: bool = False
    reason: str = ""


def judge_orphans(
    lost: Sequence[str],
    statuses: Mapping[str, RemoteStatus],
    attributed: Mapping[str, str],
) -> Orphans:
    """Which candidate media (`statuses`: not owned, not in the baseline) the `lost` uploads made.

    `attributed` maps staging tokens to the media their upload callbacks named.
    """
    named = {attributed[t] for t in lost if t in attributed}
    unnamed = sum(1 for t in lost if t not in attributed)
    doomed = sorted(m for m in named if m in statuses)
    failed = sorted(m for m, s in statuses.items() if m not in named and s.phase is Phase.FAILED)
    ingesting = [m for m, s in statuses.items() if m not in named and s.phase is Phase.PROCESSING]
    if len(failed) + len(ingesting) <= unnamed and ingesting:
        return Orphans(tuple(doomed), undecided=True, reason="media still being ingested")
    if len(failed) <= unnamed:
        return Orphans(tuple(doomed + failed))
    reason = f"{len(failed)} failed media for {unnamed} lost uploads: someone else's is among them"
    return Orphans(tuple(doomed), reason=reason)


class OrphanSweeper:
    """Deletes the orphans of lost uploads (see the module docstring) when no upload is open."""

    def __init__(
        self,
        adapter: ServiceAdapter,
        gate: Gate,
        items: Mapping[str, Item],
        *,
        clock: Clock,
        settle: float,
        attributed: Callable[[], Mapping[str, str]],
    ) -> None:
        self._adapter = adapter
        self._gate = gate
        self._items = items
        self._clock = clock
        self._settle = settle
        self._attributed = attributed
        self._lock = anyio.Lock()  # `lose` reads, appends and writes the journal's list

    async def lose(self, token: str) -> None:
        """Remember a given-up upload (before the item forgets its token)."""
        async with self._lock:
            lost = list(await self._gate.get_meta(LOST_UPLOADS) or ())
            if all(entry[0] != token for entry in lost):
                lost.append([token, self._gate.wall()])
                await self._gate.set_meta(LOST_UPLOADS, lost)

    async def pending(self) -> bool:
        """True when lost uploads still wait for their orphans to be swept."""
        return bool(await self._gate.get_meta(LOST_UPLOADS))

    async def sweep(self, *, patient: bool = True) -> bool:
        """Delete the orphans of lost uploads; True when none are left to look for.

        Waits until the newest lost upload is `settle` old (a request still in flight has made its
        media), and, when `patient`, looks a few more times while candidates are still being ingested.
        """
        lost = list(await self._gate.get_meta(LOST_UPLOADS) or ())
        if not lost:
            return True
        newest = max(float(entry[1]) for entry in lost)
        wait = newest + self._settle - self._gate.wall()
        if wait > 0:
            await self._clock.sleep(min(wait, self._settle))
        tokens = [str(entry[0]) for entry in lost]
        for look in range(_LOOKS if patient else 1):
            if look:
                await self._clock.sleep(self._settle / 4)
            verdict = await self._look(tokens)
            await self._delete(verdict.doomed)
            if not verdict.undecided:
                if verdict.reason:
                    log.warning("orphans of lost uploads left alone: %s", verdict.reason)
                await self._gate.set_meta(LOST_UPLOADS, [])
                return True
        log.warning("orphans of lost uploads still being ingested; the next run looks again")
        return False

    async def _look(self, tokens: Sequence[str]) -> Orphans:
        media = await self._gate.call(Priority.FINISH, list_media(self._adapter))
        ignore = set(await self._gate.get_meta("baseline") or ()) | self._owned()
        ignore |= set(await self._gate.trash())
        statuses: dict[str, RemoteStatus] = {}
        for entry in media:
            if entry.remote_id not in ignore:
                statuses[entry.remote_id] = await self._gate.call(
                    Priority.FINISH, self._adapter.status, entry.remote_id
                )
        return judge_orphans(tokens, statuses, self._attributed())

    async def _delete(self, doomed: Collection[str]) -> None:
        for remote_id in doomed:
            log.info("deleting the orphan of a lost upload", extra={"remote_id": remote_id})
            await self._gate.call(Priority.FINISH, self._adapter.delete, remote_id)

    def _owned(self) -> set[str]:
        return {i.remote_id for i in self._items.values() if i.remote_id is not None}
