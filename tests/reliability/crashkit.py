"""Shared parts of the crash tests: sample media, the `recuro restore` process, and the invariants.

The invariants are checked after every trial from the emulator's request log, the report and the disk
(issue 10): the last run exits 0; every output exists exactly once and is byte-identical; no file_id had a
second accepted StartJob; no media is left (unless kept); no media the run did not upload was deleted; no
sliding window held more API requests than the limit, as the server counts them, across every run of the
trial; the report's totals equal what is on disk; the secret appears nowhere.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs

from recuro_async import RecuroClient
from recuro_async.testing import LogEntry, RunningEmulator, expected_restored_bytes, serve_asgi

FORMAT, FILTERS = "MovProRes422Hq", ["Noise"]
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  "


def samples(directory: Path, sizes: Sequence[int], seed: int) -> list[Path]:
    """QuickTime files of the given sizes (random content, reproducible from `seed`)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, size in enumerate(sizes):
        path = directory / f"reel-{n:02d}.mov"
        path.write_bytes(MOV + rng.randbytes(size))
        paths.append(path)
    return paths


@attrs.frozen
class Batch:
    """One `recuro restore` command line and what its trial expects."""

    running: RunningEmulator
    inputs: list[Path]
    out: Path
    time_scale: float | None
    rate_limit: int
    keep_remote: bool = False

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "orchestrator.cli._restore",
            *map(str, self.inputs),
            "--format",
            FORMAT,
            *[a for f in FILTERS for a in ("--filter", f)],
            "--out",
            str(self.out),
            "--report",
            str(self.out / "report.json"),
            "--base-url",
            self.running.base_url,
            "--rate-limit",
            str(self.rate_limit),
        ]
        if self.time_scale is not None:
            command += ["--time-scale", str(self.time_scale)]
        if self.keep_remote:
            command.append("--keep-remote")
        return command


def env(**extra: str) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if k not in ("RECURO_BASE_URL", "ORCHESTRATOR_CRASH_AT")
    }
    return base | extra


async def run(batch: Batch, log: Path, *, crash_at: str | None = None, timeout: float = 120) -> int:
    """Run the command to its end (or its crash point); the exit code."""
    extra = {"ORCHESTRATOR_CRASH_AT": crash_at} if crash_at else {}
    with log.open("ab") as errors, anyio.fail_after(timeout):
        result = await anyio.run_process(
            batch.command(), stdout=errors, stderr=errors, env=env(**extra), check=False
        )
    return result.returncode


async def run_and_kill(batch: Batch, log: Path, *, after: float) -> int | None:
    """Run the command and SIGKILL it `after` seconds in; its exit code if it ended before that."""
    with log.open("ab") as errors:
        process = await anyio.open_process(batch.command(), stdout=errors, stderr=errors, env=env())
        async with process:
            with anyio.move_on_after(after):
                return await process.wait()
            process.send_signal(signal.SIGKILL)
            await process.wait()
    return None


async def foreign_media(running: RunningEmulator, tg: anyio.abc.TaskGroup) -> str:
    """Media already on the account before the batch (someone else's): the batch must never touch it."""
    data = MOV + b"someone else's reel"

    async def serve(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        headers = [(b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    origin = await tg.start(serve_asgi, serve)
    async with RecuroClient(
        running.api_key, running.api_secret, base_url=running.base_url, rate_limit=None
    ) as client:
        return await client.upload_media(f"{origin.rstrip('/')}/theirs.mov")


def max_in_window(times: list[float], period: float) -> int:
    """The most arrivals in any window [t, t + period) (two pointers over the sorted times)."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


def check_invariants(
    batch: Batch,
    *,
    code: int,
    log: Path,
    entries: list[LogEntry],
    left: list[str],
    foreign: str | None,
    period: float,
    secret: str,
) -> None:
    """Every invariant of the module docstring (an AssertionError names the one that broke)."""
    assert code == 0, f"the last run exited {code}:\n{log.read_text()[-3000:]}"
    report = json.loads((batch.out / "report.json").read_text())
    n = len(batch.inputs)
    assert report["totals"] == {"done": n, "failed": 0, "parked": 0, "pending": 0}, report["totals"]
    for original in batch.inputs:
        restored = batch.out / original.name  # MovProRes422Hq keeps the .mov extension
        assert restored.read_bytes() == expected_restored_bytes(
            original.read_bytes(), output_format=FORMAT, filters=FILTERS, output_scaling=None
        ), f"{original.name}: not byte-identical"
    on_disk = sorted(p.name for p in batch.out.iterdir() if not p.name.startswith("."))
    assert on_disk == sorted([*(p.name for p in batch.inputs), "report.json"]), on_disk
    sizes = {Path(i["output_path"]).name: i["size"] for i in report["items"]}
    assert all((batch.out / name).stat().st_size == size for name, size in sizes.items())
    jobs = collections.Counter(
        e.file_id for e in entries if e.action == "StartJob" and e.status == 200
    )
    assert not jobs or max(jobs.values()) == 1, f"a second accepted StartJob: {jobs.most_common(3)}"
    uploaded = {e.file_id for e in entries if e.action == "UploadMedia" and e.status == 200}
    deleted = {e.file_id for e in entries if e.action == "DeleteMedia" and e.status == 200}
    assert deleted <= uploaded, f"deleted media the batch did not upload: {deleted - uploaded}"
    if foreign is not None:
        assert foreign in left, "media that was on the account before the batch is gone"
    mine = [m for m in left if m != foreign]
    if batch.keep_remote:
        done_ids = {i["remote_id"] for i in report["items"]}
        assert done_ids <= set(mine)
    else:
        assert mine == [], f"media left on the account: {mine}"
    api = [e.time for e in entries if e.action != "download"]
    peak = max_in_window(api, period)
    assert peak <= batch.rate_limit, f"{peak} API requests in one window (limit {batch.rate_limit})"
    for path in (batch.out / "report.json", batch.out / ".recuro-journal.sqlite"):
        assert secret.encode() not in path.read_bytes()
    assert secret not in log.read_text()
