"""Seeded random `kill -9`s of `recuro restore`: three kills per trial at random moments, then a run to the end.

Thirty files of 100 KB-1.2 MB. Odd seeds run the emulator at time scale 0.01 and the restore without
`--time-scale` (its budget, paced at 200 per real minute, is then far more conservative than the server's);
even seeds run both at 0.05 with a limit of 30 requests per (scaled) window, so the rate budget binds and a
rerun right after a kill must remember the killed run's requests; every third seed answers with other error
codes where the document names none. Media someone else put on the account before the batch must survive
it. Every invariant of `crashkit` holds after every trial. 3 seeds in CI (and one with `--keep-remote`, where
a second StartJob would be a second paid job; even seeds, the faster variant); `RELIABILITY_SEEDS=N` for
more.
"""

from __future__ import annotations

import os
import random

import anyio
import pytest
from crashkit import Batch, check_invariants, foreign_media, run, run_and_kill, samples

from recuro_async.testing import ALTERNATE_ERROR_CODES, EmulatorConfig, run_emulator

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SEEDS = int(os.environ.get("RELIABILITY_SEEDS", "3"))
KILLS = 3


async def _trial(tmp_path, seed: int, *, keep_remote: bool, key: str, secret: str) -> None:
    rng = random.Random(seed)
    binding = seed % 2 == 0
    scale = 0.05 if binding else 0.01
    limit = 30 if binding else 200
    codes = ALTERNATE_ERROR_CODES if seed % 3 == 2 else {}  # another reading of the silences
    config = EmulatorConfig(
        credentials={key: secret}, time_scale=scale, seed=seed, rate_limit=limit, error_codes=codes
    )
    sizes = [rng.randrange(100_000, 1_200_000) for _ in range(30)]
    async with run_emulator(config) as running, anyio.create_task_group() as tg:
        foreign = await foreign_media(running, tg)
        before = len(running.emulator.log)  # the batch's requests only (the window check)
        batch = Batch(
            running,
            samples(tmp_path / "in", sizes, seed=seed),
            tmp_path / "out",
            time_scale=scale if binding else None,
            rate_limit=limit,
            keep_remote=keep_remote,
        )
        log = tmp_path / "log.txt"
        code = None
        for _ in range(KILLS):
            code = await run_and_kill(batch, log, after=rng.uniform(0.5, 3.0))
            if code is not None:
                break  # the batch finished before the kill
        if code is None:
            code = await run(batch, log)
        check_invariants(
            batch,
            code=code,
            log=log,
            entries=running.emulator.log[before:],
            left=running.emulator.media_ids(),
            foreign=foreign,
            period=60.0 * scale,
            secret=secret,
        )
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_random_kills_resume_to_exactly_once(tmp_path, seed, canary_key, canary_secret):
    """Three kills at seeded random moments; the last run ends with every invariant holding."""
    await _trial(tmp_path, seed, keep_remote=False, key=canary_key, secret=canary_secret)


@pytest.mark.parametrize("seed", range(100, 100 + 2 * max(SEEDS // 3, 1), 2))
async def test_random_kills_with_keep_remote(tmp_path, seed, canary_key, canary_secret):
    """The same with --keep-remote: one paid job per file, the results left on the account."""
    await _trial(tmp_path, seed, keep_remote=True, key=canary_key, secret=canary_secret)
