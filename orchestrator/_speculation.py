"""Earned speculation: whether the next step itself may probe a prediction, and how many at once.

Every contact at a prediction is scored when answered (done by then, or not). With p the hit rate of the
last ones (Laplace-smoothed) and c the requests a refusal costs, speculating costs p + (1 - p)(c + 2)
requests against 2 for probing first, so it is used when p > c / (1 + c). Predictions made from one model
fail together, so speculation also has a window, as TCP's slow start: at most `window` speculative
contacts unanswered at once, one more after each accepted one, back to one after a refusal.
"""

from __future__ import annotations

import collections
from typing import Final

import attrs

__all__ = ["SpeculationRecord"]

_SCORED: Final = 16  # contacts at a prediction whose outcome decides whether to speculate
_WINDOW_CAP: Final = 64  # speculative contacts unanswered at once, at most


@attrs.define
class SpeculationRecord:
    """The recent contacts' record, the slow-start window, and the speculative contacts unanswered."""

    window: int = 1
    in_flight: int = 0
    _scores: collections.deque[bool] = attrs.Factory(lambda: collections.deque(maxlen=_SCORED))

    def score(self, *, hit: bool) -> None:
        """A contact at a prediction was answered: the item was done by then (`hit`), or not."""
        self._scores.append(hit)

    def earned(self, refusal_cost: int) -> bool:
        """Recent contacts hit often enough that a speculative one costs less than a probe first."""
        hit_rate = (sum(self._scores) + 1) / (len(self._scores) + 2)
        return hit_rate > refusal_cost / (1 + refusal_cost)

    def room(self, refusal_cost: int) -> int | None:
        """Speculative contacts the window has room for now; None while speculation is not earned."""
        return self.window - self.in_flight if self.earned(refusal_cost) else None

    def grant(self, refusal_cost: int) -> bool:
        """Take a place in the window for one speculative contact, if earned and there is room."""
        if self.in_flight >= self.window or not self.earned(refusal_cost):
            return False
        self.in_flight += 1
        return True

    def answered(self, *, hit: bool | None) -> None:
        """A speculative contact ended: accepted (`hit`), refused, or dropped unanswered (None)."""
        self.in_flight -= 1
        if hit is not None:
            self.window = min(self.window + 1, _WINDOW_CAP) if hit else 1
