"""Ctrl-C for a batch: the first asks the runner to stop (admit nothing new, checkpoint), the second aborts."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

import anyio

__all__ = ["watch_interrupts"]


async def watch_interrupts(
    stop: Callable[[], object],
    abort: Callable[[], object],
    *,
    say: Callable[[str], object] | None = None,
) -> None:
    """Call `stop` on the first SIGINT/SIGTERM and `abort` on the next; runs until cancelled."""
    signals = [signal.SIGINT, signal.SIGTERM]
    with anyio.open_signal_receiver(*signals) as received:
        count = 0
        async for _ in received:
            count += 1
            if count == 1:
                if say is not None:
                    say(
                        "interrupted: admitting nothing new, finishing calls in flight (Ctrl-C again to stop now)"
                    )
                stop()
            else:
                if say is not None:
                    say("stopping now; the journal is consistent, rerun the same command to resume")
                abort()


def stderr_line(text: str) -> None:
    """Print a line for a person on stderr."""
    print(f"recuro: {text}", file=sys.stderr, flush=True)
