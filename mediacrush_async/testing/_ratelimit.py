"""The server's rate limits: per client address, fixed windows (MEDIACRUSH.md section 5, `ratelimit.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs


@attrs.define
class _Window:
    started: float
    total: int = 0


class FixedWindowCounter:
    """Add units per key into a fixed window that starts with the key's first use and is never extended.

    The upload limit counts bytes: the size is added *before* the check and also for uploads that are
    then refused (420) or are duplicates (409), so once over the limit every attempt adds more until the
    window ends. A total at or above the limit is refused (`>=`, as in the server).
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float], exempt: Iterable[str] = ()
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._exempt = frozenset(exempt)
        self._windows: dict[str, _Window] = {}

    def _current(self, key: str) -> _Window | None:
        win = self._windows.get(key)
        if win is not None and self._clock() - win.started >= self.window:
            del self._windows[key]
            return None
        return win

    def add(self, key: str, units: int) -> bool:
        """Count `units` for `key`; return True if the request must be refused (420)."""
        if key in self._exempt:
            return False
        win = self._current(key)
        if win is None:
            win = self._windows[key] = _Window(started=self._clock())
        win.total += units
        return win.total >= self.limit

    def used(self, key: str) -> int:
        """Units counted for `key` in its current window."""
        win = self._current(key)
        return 0 if win is None else win.total

    def resets_in(self, key: str) -> float:
        """Seconds until `key`'s window ends (0 when it has none)."""
        win = self._current(key)
        return 0.0 if win is None else max(0.0, win.started + self.window - self._clock())
