"""`kill -9` of `recuro restore` at several points, then the same command again: nothing lost or doubled.

Each trial runs the CLI as its own process against the emulator on loopback, and SIGKILLs it right after
an UploadMedia intent was committed, while a job runs, and in the middle of a download (the emulator caps
download bandwidth so there is a middle); a last run finishes the batch. Then every item is done exactly
once and byte for byte, no file_id had a second job, no media is left on the account, and the interrupted
download resumed with a range request instead of starting over. 2 trials in CI; RELIABILITY_TRIALS for more.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from recuro_async.testing import (
    EmulatorConfig,
    RunningEmulator,
    expected_restored_bytes,
    run_emulator,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

TRIALS = int(os.environ.get("RELIABILITY_TRIALS", "2"))
TIME_SCALE = 0.05
FORMAT, FILTERS = "MovProRes422Hq", ["Noise"]
BIG = "big-reel.mov"
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  "


def _samples(directory: Path, seed: int) -> list[Path]:
    """Five small QuickTime files and one of 4 MiB (slow to download under the bandwidth cap)."""
    import random

    rng = random.Random(seed)
    directory.mkdir(parents=True)
    paths = []
    for n, size in enumerate([20_000, 60_000, 35_000, 90_000, 45_000]):
        path = directory / f"reel-{n}.mov"
        path.write_bytes(MOV + rng.randbytes(size))
        paths.append(path)
    big = directory / BIG
    big.write_bytes(MOV + rng.randbytes(4 * 1024 * 1024))
    return [*paths, big]


def _command(running: RunningEmulator, inputs: list[Path], out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orchestrator.cli._restore",
        *map(str, inputs),
        "--format",
        FORMAT,
        *[a for f in FILTERS for a in ("--filter", f)],
        "--out",
        str(out),
        "--report",
        str(out / "report.json"),
        "--base-url",
        running.base_url,
        "--time-scale",
        str(TIME_SCALE),
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RECURO_BASE_URL"}


async def _run_until(command: list[str], trigger: Callable[[str], bool], log: Path) -> str:
    """Run the CLI, SIGKILL it at the first stdout line (without its newline) matching `trigger`."""
    with log.open("ab") as errors:
        process = await anyio.open_process(
            command, stdout=subprocess.PIPE, stderr=errors, env=_env()
        )
        async with process:
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            try:
                with anyio.fail_after(60):
                    while True:
                        line = (await lines.receive_until(b"\n", 1 << 16)).decode()
                        if trigger(line):
                            process.kill()
                            await process.wait()
                            return line
            except anyio.IncompleteRead:
                await process.wait()
                pytest.fail(f"the run ended (exit {process.returncode}) before the kill point")


async def _run_to_end(command: list[str], log: Path) -> tuple[int, str]:
    with log.open("ab") as errors:
        with anyio.fail_after(90):
            result = await anyio.run_process(
                command, stdout=subprocess.PIPE, stderr=errors, env=_env(), check=False
            )
    return result.returncode, result.stdout.decode()


def _mid_download(line: str) -> bool:
    if not line.startswith(f"{BIG}: downloaded "):
        return False
    done, _, total = line.removeprefix(f"{BIG}: downloaded ").split()[:3]
    return 0 < int(done) < int(total)


@pytest.mark.parametrize("trial", range(TRIALS))
async def test_kill_9_and_rerun_restores_everything_exactly_once(
    tmp_path, trial, canary_key, canary_secret
):
    """Killed after an upload intent, mid-job and mid-download, the rerun finishes with nothing doubled."""
    inputs = _samples(tmp_path / "in", seed=trial)
    out = tmp_path / "out"
    log = tmp_path / "stderr.txt"
    config = EmulatorConfig(
        credentials={canary_key: canary_secret},
        time_scale=TIME_SCALE,
        seed=trial,
        bandwidth=1_500_000,
    )
    async with run_emulator(config) as running:
        command = _command(running, inputs, out)
        kills = [
            await _run_until(command, lambda line: line.endswith(": uploading"), log),
            await _run_until(command, lambda line: line.endswith(": restoring"), log),
            await _run_until(command, _mid_download, log),
        ]
        part = out / f"{Path(BIG).stem}.mov.part"
        assert part.exists(), "the killed download left its .part"
        code, stdout = await _run_to_end(command, log)
        entries = running.emulator.log
        left = running.emulator.media_ids()
    assert code == 0, stdout + log.read_text()
    assert len(kills) == 3
    report = json.loads((out / "report.json").read_text())
    assert report["totals"] == {"done": 6, "failed": 0, "parked": 0, "pending": 0}
    for original in inputs:
        restored = out / original.name  # MovProRes422Hq keeps the .mov extension
        assert restored.read_bytes() == expected_restored_bytes(
            original.read_bytes(), output_format=FORMAT, filters=FILTERS, output_scaling=None
        ), original.name
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        [*(p.name for p in inputs), "report.json"]
    ), "every item exactly once, no .part left"
    jobs = collections.Counter(
        e.file_id for e in entries if e.action == "StartJob" and e.status == 200
    )
    assert max(jobs.values()) == 1, jobs
    done_ids = {item["remote_id"] for item in report["items"]}
    assert done_ids <= set(jobs)
    assert left == []
    big_id = next(i["remote_id"] for i in report["items"] if i["input"].endswith(BIG))
    downloads = [e.status for e in entries if e.action == "download" and e.file_id == big_id]
    assert 206 in downloads, f"the interrupted download restarted from zero: {downloads}"
    for path in (out / "report.json", out / ".recuro-journal.sqlite"):
        assert canary_secret.encode() not in path.read_bytes()
    assert canary_secret not in stdout + log.read_text()
