"""What a batch learns about how long one remote phase takes: the durations of items that finished it.

A least-squares line over size when sizes vary (the service's time grows with the media's length), else
the median; and a margin by which predictions lean late, steered by how the contacts at them went.
"""

from __future__ import annotations

import statistics
from typing import Final

import attrs

__all__ = ["Durations"]

_HISTORY: Final = 64  # durations kept per phase
# predictions are steered so that this share of contacts at them hits (see `Durations.steer`)
_HIT_GOAL, _MARGIN_STEP, _MARGIN_RANGE = 0.8, 0.05, (-0.3, 1.0)


@attrs.define
class Durations:
    """Durations (size, seconds) of items that finished a phase; the fit is cached between samples.

    Attributes:
        margin: how late predictions lean, as a fraction of the expected duration.
    """

    margin: float = 0.1
    samples: list[tuple[int | None, float]] = attrs.Factory(list)
    # (median, line) where line is (mean size, mean duration, slope, shortest) or None
    _fit: tuple[float, tuple[float, float, float, float] | None] | None = None
    _spread: float | None = None  # `spread()`, cached like the fit

    def add(self, size: int | None, duration: float) -> None:
        """An item of `size` bytes (None: unknown) finished the phase in `duration` seconds."""
        self.samples.append((size, max(duration, 0.0)))
        del self.samples[:-_HISTORY]
        self._fit = self._spread = None

    def expect(self, size: int | None) -> float | None:
        """How long an item of `size` is expected to take (None: nothing learned yet)."""
        if not self.samples:
            return None
        if self._fit is None:
            self._fit = self._refit()
        median, line = self._fit
        if size is not None and line is not None:
            mean_x, mean_y, slope, shortest = line
            return max(mean_y + slope * (size - mean_x), shortest)
        return median

    def spread(self) -> float:
        """The longest of the learned durations, as a multiple of what the fit expects for its size (at
        least 1): how far past its expected time an item can still be on its way (a job queue, say)."""
        if self._spread is None:
            self._spread = 1.0
            for size, duration in self.samples:
                expected = self.expect(size)
                if expected:
                    self._spread = max(self._spread, duration / expected)
        return self._spread

    def steer(self, *, hit: bool) -> None:
        """Move the margin toward the quantile of the durations that `_HIT_GOAL` of contacts hit (a
        stochastic approximation: a miss widens it, a hit narrows it a quarter as much). The learned
        durations are censored by the contacts that found them, and times vary by service; the hit
        rate itself says where the margin stands."""
        step = _MARGIN_STEP * ((1.0 if not hit else 0.0) - (1.0 - _HIT_GOAL))
        self.margin = min(max(self.margin + step, _MARGIN_RANGE[0]), _MARGIN_RANGE[1])

    def _refit(self) -> tuple[float, tuple[float, float, float, float] | None]:
        median = statistics.median(d for _, d in self.samples)
        sized = [(float(s), d) for s, d in self.samples if s is not None]
        line = None
        if len(sized) >= 3:
            mean_x = statistics.fmean(x for x, _ in sized)
            mean_y = statistics.fmean(y for _, y in sized)
            var = sum((x - mean_x) ** 2 for x, _ in sized)
            if var > 0:
                slope = sum((x - mean_x) * (y - mean_y) for x, y in sized) / var
                if slope >= 0:
                    line = (mean_x, mean_y, slope, min(y for _, y in sized))
        return median, line
