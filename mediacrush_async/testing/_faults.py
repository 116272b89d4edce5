"""Seeded, reproducible fault injection (500s, dropped connections, truncated downloads, latency).

Every request draws the same number of values from one `random.Random(seed)` stream, whatever happens
to it, so a given seed and request order always give the same faults. Processing failures are drawn
per file from `(seed, hash, attempt)` instead, so they do not depend on request order.
"""

from __future__ import annotations

import random

import attrs
import httpx

from ._config import EmulatorConfig


class InjectedDrop(httpx.RemoteProtocolError):
    """Raised inside the ASGI app to make the server drop the connection mid-response.

    uvicorn closes the connection; in-process, `httpx.ASGITransport` re-raises it, and since it is an
    `httpx.RemoteProtocolError` a client sees the same exception type as over a socket.
    """


@attrs.frozen
class FaultDecision:
    """The faults chosen for one request.

    Attributes:
        delay: Seconds to wait before handling.
        error: Answer with an HTML 500 without doing anything.
        drop: Drop the connection halfway through the response body (after the request took effect).
        truncate_at: For a file download: the fraction of the body sent before the connection drops.
    """

    delay: float = 0.0
    error: bool = False
    drop: bool = False
    truncate_at: float | None = None


NO_FAULT = FaultDecision()


class FaultPlan:
    """Draws a `FaultDecision` per request from a seeded generator."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._rng = random.Random(f"mediacrush-faults/{config.seed}")

    def next(self) -> FaultDecision:
        """Decide the faults of the next request."""
        cfg = self._config
        draws = [self._rng.random() for _ in range(5)]
        return FaultDecision(
            delay=cfg.latency + cfg.latency_jitter * draws[0],
            error=draws[1] < cfg.fault_rate,
            drop=draws[2] < cfg.drop_rate,
            truncate_at=draws[4] if draws[3] < cfg.truncate_rate else None,
        )

    def processing_outcome(self, file_hash: str, attempt: int) -> str | None:
        """The failure status a processing run ends in, or None for success."""
        cfg = self._config
        if cfg.failure_rate <= 0:
            return None
        rng = random.Random(f"mediacrush-processing/{cfg.seed}/{file_hash}/{attempt}")
        if rng.random() >= cfg.failure_rate:
            return None
        return rng.choice(cfg.failure_statuses)
