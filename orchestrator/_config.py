"""How a batch runs: `RunnerConfig`, the engine's knobs in one frozen value."""

from __future__ import annotations

from pathlib import Path

import attrs

from ._polling import PollSettings

__all__ = ["RunnerConfig"]


@attrs.frozen
class RunnerConfig:
    """How a batch runs.

    Attributes:
        out_dir: where restored files go.
        keep_remote: leave media on the account after downloading (no DeleteMedia).
        retry_failed: put failed items of an earlier run back in the queue.
        notify_url: the full callback URL to hand the service (webhook mode), or None to poll.
        max_active: items that may hold media on the account at once.
        max_calls: API calls waiting at the client's limiter or in flight at once (the priority gate).
        max_uploads: UploadMedia calls at once (default 16). Only uploads whose media cannot be mixed up
            after a lost answer share the wire: staged local inputs once the service is seen to answer
            before it fetches (the seal, `_seal.py`), or a content-addressed service's; the others go
            one at a time whatever this says.
        fetch_hold: seconds the staging server holds the service's fetch of an input whose upload is
            not answered yet (the seal); a fetch held this long is served after all, and uploads go one
            at a time from then on (the service fetches before it answers).
        max_staging: local files being staged at once.
        max_downloads: downloads at once.
        poll: the poll planner's intervals.
        settle: seconds to wait after an unanswered non-idempotent call before judging its outcome.
        step_retries: transient failures of one step before its item fails.
        backoff: first delay between retries of a step (doubles, capped at `backoff_cap`).
        backoff_cap: the longest delay between retries of a step.
        verify_done: check on a rerun that the outputs of done items are still on disk.
        phase_timeout: an item waiting longer than this for one remote phase (analysis, or its job)
            fails with `StageTimeout` (checked whenever the item hears from the service); None: never.
        callback_wait: how long an unanswered upload that only a callback can attribute waits for it
            (the callback comes once the media is analysed) before the item is parked for a person.
    """

    out_dir: Path
    keep_remote: bool = False
    retry_failed: bool = False
    notify_url: str | None = None
    max_active: int = 32
    max_calls: int = 16
    max_uploads: int = 16
    max_staging: int = 4
    max_downloads: int = 4
    poll: PollSettings = attrs.Factory(PollSettings)
    settle: float = 30.0
    step_retries: int = 5
    backoff: float = 1.0
    backoff_cap: float = 30.0
    verify_done: bool = True
    phase_timeout: float | None = None
    callback_wait: float = 1800.0
    fetch_hold: float = 5.0

    def scaled(self, factor: float) -> RunnerConfig:
        """This config with every duration of the service's clock multiplied by `factor`, once (for a
        service or emulator whose clock runs `factor` times as fast as the real one: `--time-scale X`).

        `fetch_hold` stays: it bounds our own answer's way into the journal, which no service clock speeds.
        """
        poll = self.poll
        return attrs.evolve(
            self,
            poll=attrs.evolve(
                poll,
                min_interval=poll.min_interval * factor,
                max_interval=poll.max_interval * factor,
                reconcile_interval=poll.reconcile_interval * factor,
            ),
            settle=self.settle * factor,
            backoff=self.backoff * factor,
            backoff_cap=self.backoff_cap * factor,
            phase_timeout=None if self.phase_timeout is None else self.phase_timeout * factor,
            callback_wait=self.callback_wait * factor,
        )
