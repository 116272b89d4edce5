"""The crash-point sweep: `recuro restore` ended right before or right after its n-th effect, for every n.

An effect is a journal commit or a remote call (plus one point halfway through each download). The engine
ends the process with `os._exit` at the chosen point (`ORCHESTRATOR_CRASH_AT`, a test hook the CLI reads), as
`kill -9` would; the same command is then run to its end, and every invariant of `crashkit` must hold. The
batch (six files, one large enough for a resumed download) passes through every stage: staging, upload,
analysis, start, job, download, delete.

CI sweeps every 17th point (both sides alternately); `RELIABILITY_SWEEP=full` sweeps every point on both sides
(see tests/reliability/RESULTS.md).
"""

from __future__ import annotations

import itertools
import os

import anyio
import pytest
from crashkit import Batch, check_invariants, foreign_media, run, samples

from orchestrator._effects import CRASH_EXIT
from recuro_async.testing import EmulatorConfig, run_emulator

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

FULL = os.environ.get("RELIABILITY_SWEEP") == "full"
TIME_SCALE = 0.02
SIZES = [20_000, 60_000, 35_000, 90_000, 45_000, 4 * 1024 * 1024]


def _points() -> list[tuple[str, int]]:
    """(side, n) in sweep order; the sweep ends at the first n the batch never reaches."""
    if FULL:
        return [(side, n) for n in range(1, 1000) for side in ("before", "after")]
    sides = itertools.cycle(("before", "after"))
    return [(next(sides), n) for n in range(1, 1000, 17)]


async def _trial(tmp_path, side: str, n: int, key: str, secret: str) -> bool:
    """One crash at `side:n` and the rerun; False when the batch ended before reaching n."""
    trial = tmp_path / f"{side}-{n}"
    config = EmulatorConfig(
        credentials={key: secret}, time_scale=TIME_SCALE, seed=n, bandwidth=8_000_000
    )
    async with run_emulator(config) as running, anyio.create_task_group() as tg:
        foreign = await foreign_media(running, tg)
        before = len(running.emulator.log)  # the batch's requests only (the window check)
        batch = Batch(
            running,
            samples(trial / "in", SIZES, seed=n),
            trial / "out",
            time_scale=TIME_SCALE,
            rate_limit=200,
        )
        log = trial / "log.txt"
        first = await run(batch, log, crash_at=f"{side}:{n}")
        assert first in (0, CRASH_EXIT), log.read_text()[-3000:]
        code = first if first == 0 else await run(batch, log)
        check_invariants(
            batch,
            code=code,
            log=log,
            entries=running.emulator.log[before:],
            left=running.emulator.media_ids(),
            foreign=foreign,
            period=60.0 * TIME_SCALE,
            secret=secret,
        )
        tg.cancel_scope.cancel()
    return first == CRASH_EXIT


@pytest.mark.timeout(7200 if FULL else 600)
async def test_every_crash_point_resumes_to_exactly_once(tmp_path, canary_key, canary_secret):
    """For each swept crash point, the rerun ends with every invariant holding."""
    crashed = 0
    for side, n in _points():
        if not await _trial(tmp_path, side, n, canary_key, canary_secret):
            break
        crashed += 1
    print(f"crash points swept: {crashed} (last reached: {side} {n})")  # noqa: T201 - with -s
    assert crashed >= (30 if FULL else 4), f"only {crashed} crash points were reached"
