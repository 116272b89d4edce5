"""The seeded fault plan: 500s, dropped responses, truncated downloads, latency, failing jobs.

Each kind of fault draws from its own `random.Random` seeded from `(seed, kind)`, once per opportunity in
arrival order, so the same seed and the same sequence of requests give the same faults whatever else
happens (a latency draw never shifts the 500 sequence, for example). Every injected fault is recorded.
"""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class FaultRecord:
    """One injected fault.

    Attributes:
        kind: "error500", "drop", "truncate", "latency" or "job_failure".
        action: the action (or "download") it hit.
        file_id: the media concerned, when known.
        detail: the drawn parameter (cut offset, delay in seconds, failure point as a fraction).
    """

    kind: str
    action: str
    file_id: str | None
    detail: float


class FaultPlan:
    """Draws reproducible fault decisions and keeps the record of those injected."""

    def __init__(
        self,
        seed: int,
        *,
        error_rate: float,
        drop_rate: float,
        truncate_rate: float,
        job_failure_rate: float,
        latency: float,
        latency_min: float = 0.0,
    ) -> None:
        self.error_rate = error_rate
        self.drop_rate = drop_rate
        self.truncate_rate = truncate_rate
        self.job_failure_rate = job_failure_rate
        self.latency = latency
        self.latency_min = latency_min
        self._rng = {
            kind: random.Random(f"recuro-emulator:{seed}:{kind}")
            for kind in ("error500", "drop", "truncate", "latency", "job_failure")
        }
        self.record: list[FaultRecord] = []

    def _draw(self, kind: str, rate: float) -> float | None:
        """Return a uniform parameter in [0, 1) when the fault fires, else None (one draw pair always)."""
        rng = self._rng[kind]
        hit = rng.random()
        detail = rng.random()
        return detail if hit < rate else None

    def server_error(self, action: str, file_id: str | None) -> bool:
        """Whether this API request gets an injected 500."""
        fired = self._draw("error500", self.error_rate)
        if fired is not None:
            self.record.append(FaultRecord("error500", action, file_id, 0.0))
        return fired is not None

    def drop(self, action: str, file_id: str | None, body_length: int) -> int | None:
        """Return how many body bytes to send before dropping the connection, or None."""
        fired = self._draw("drop", self.drop_rate)
        if fired is None:
            return None
        cut = int(fired * body_length)
        self.record.append(FaultRecord("drop", action, file_id, float(cut)))
        return cut

    def truncate(self, file_id: str | None, body_length: int) -> int | None:
        """Return how many bytes of a download body to send before dropping, or None.

        At least one byte is always sent, so a client resuming from what it holds always progresses.
        """
        fired = self._draw("truncate", self.truncate_rate)
        if fired is None or body_length < 2:
            return None
        cut = 1 + int(fired * (body_length - 1))
        self.record.append(FaultRecord("truncate", "download", file_id, float(cut)))
        return cut

    def delay(self, action: str, file_id: str | None) -> float:
        """Return the extra latency of this API response in seconds, uniform in [latency_min, latency]."""
        if self.latency <= 0:
            return 0.0
        span = self.latency - self.latency_min
        seconds = self.latency_min + self._rng["latency"].random() * span
        self.record.append(FaultRecord("latency", action, file_id, seconds))
        return seconds

    def job_failure(self, file_id: str) -> float | None:
        """Return the point (fraction of the job's run) at which this job fails, or None."""
        fired = self._draw("job_failure", self.job_failure_rate)
        if fired is None:
            return None
        point = 0.05 + 0.9 * fired
        self.record.append(FaultRecord("job_failure", "StartJob", file_id, point))
        return point
