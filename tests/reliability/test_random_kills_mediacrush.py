"""Seeded random `kill -9`s of `mediacrush upload --out DIR --delete`: ownership survives every restart.

Twelve files; one of them (and one that is not in the batch) was on the server before the batch. Three kills
at seeded random moments, then a run to the end: every manifest and derived file is on disk byte for byte,
each upload the batch made is deleted, and nothing that was on the server before is deleted or even asked
to be. 3 seeds in CI; `RELIABILITY_SEEDS=N` for more.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path

import anyio
import pytest

from mediacrush_async import MediaCrushClient, content_hash
from mediacrush_async.testing import (
    EmulatorConfig,
    expected_derived_bytes,
    run_emulator,
    sample_media,
)
from orchestrator._adapters.mediacrush import read_manifest

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SEEDS = int(os.environ.get("RELIABILITY_SEEDS", "3"))
TIME_SCALE = 0.02
KINDS = ("gif", "png", "mp3", "mp4", "jpeg", "wav")


def _command(base_url: str, inputs: list[Path], out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orchestrator.cli.mediacrush",
        "upload",
        *map(str, inputs),
        "--out",
        str(out),
        "--delete",
        "--report",
        str(out / "report.json"),
        "--time-scale",
        str(TIME_SCALE),
        "--base-url",
        base_url,
    ]


async def _run(command: list[str], log: Path, *, kill_after: float | None) -> int | None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MEDIACRUSH_", "ORCHESTRATOR_"))
    }
    with log.open("ab") as errors:
        process = await anyio.open_process(command, stdout=errors, stderr=errors, env=env)
        async with process:
            with anyio.move_on_after(kill_after if kill_after is not None else 120):
                return await process.wait()
            process.send_signal(signal.SIGKILL)
            await process.wait()
    return None


def _check_outputs(inputs: list[Path], out: Path) -> None:
    """Every manifest names the file's hash, and every derived file on disk is byte-identical."""
    for path in inputs:
        manifest = read_manifest(out / f"{path.name}.mediacrush.json")
        assert manifest.hash == content_hash(path.read_bytes())
        for derived in manifest.files:
            if derived.path is not None:
                assert Path(derived.path).read_bytes() == expected_derived_bytes(
                    path.read_bytes(), derived.name, original_ext=path.suffix[1:]
                ), derived.name


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_random_kills_of_a_mediacrush_batch(tmp_path, seed):
    """Three kills at seeded random moments; the last run deletes exactly the batch's own uploads."""
    rng = random.Random(seed)
    src = tmp_path / "in"
    src.mkdir()
    inputs = []
    for n in range(12):
        kind = KINDS[n % len(KINDS)]
        path = src / f"f{n:02d}.{kind}"
        path.write_bytes(sample_media(kind, size=rng.randrange(5_000, 60_000), seed=seed * 100 + n))
        inputs.append(path)
    outsider = src / "outsider.png"
    outsider.write_bytes(sample_media("png", size=9_000, seed=seed + 7))
    theirs = {content_hash(inputs[0].read_bytes()), content_hash(outsider.read_bytes())}
    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "log.txt"
    async with run_emulator(EmulatorConfig(time_scale=TIME_SCALE, seed=seed)) as running:
        async with MediaCrushClient(running.base_url) as earlier:  # on the server before the batch
            for path in (inputs[0], outsider):
                await earlier.wait((await earlier.upload_file(path)).hash)
        command = _command(running.base_url, inputs, out)
        code = None
        for _ in range(3):
            code = await _run(command, log, kill_after=rng.uniform(0.3, 2.0))
            if code is not None:
                break
        if code is None:
            code = await _run(command, log, kill_after=None)
        stored = {name.split(".")[0] for name in running.emulator.stored_names()}
        deletes = [
            e.hash
            for e in running.emulator.log
            if e.route.startswith("DELETE") or "delete" in e.route
        ]
    assert code == 0, log.read_text()[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["totals"] == {"done": 12, "failed": 0, "parked": 0, "pending": 0}
    _check_outputs(inputs, out)
    ours = {content_hash(p.read_bytes()) for p in inputs} - theirs
    assert not (stored & ours), f"the batch's own uploads were left: {stored & ours}"
    assert theirs <= stored, "a file that was on the server before the batch is gone"
    assert not (set(deletes) & theirs), "the batch asked to delete a file it did not upload"
