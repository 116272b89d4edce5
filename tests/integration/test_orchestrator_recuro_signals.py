"""Ctrl-C on `recuro restore` (a real process): the first stops admitting and exits 130, a rerun resumes."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from recuro_async.testing import EmulatorConfig, RunningEmulator, make_samples, run_emulator

TIME_SCALE = 0.05

pytestmark = pytest.mark.slow


def _command(running: RunningEmulator, inputs: list[Path], out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orchestrator.cli.recuro",
        "restore",
        *map(str, inputs),
        "--format",
        "Mp4Hevc",
        "--out",
        str(out),
        "--base-url",
        running.base_url,
        "--time-scale",
        str(TIME_SCALE),
        "--max-active",
        "4",
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RECURO_BASE_URL"}


async def _interrupt(command: list[str], at: str, signals: int) -> tuple[int, str]:
    """Run the command; at the first stdout line ending with `at`, send SIGINT `signals` times."""
    process = await anyio.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    async with process:
        assert process.stdout is not None
        assert process.stderr is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(60):
            while not (await lines.receive_until(b"\n", 1 << 16)).decode().endswith(at):
                pass
            for _ in range(signals):
                process.send_signal(signal.SIGINT)
            rest = b"".join([chunk async for chunk in process.stdout])
            err = b"".join([chunk async for chunk in process.stderr])
            code = await process.wait()
    return code, (rest + err).decode()


def _open_intents(journal: Path) -> int:
    conn = sqlite3.connect(journal)
    try:
        return conn.execute("SELECT COUNT(*) FROM intents WHERE resolved_at IS NULL").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("signals", [1, 2])
async def test_ctrl_c_exits_130_and_the_same_command_resumes(
    tmp_path, signals, canary_key, canary_secret
):
    """Interrupted (once: checkpoint; twice: at once), the batch exits 130; the rerun finishes it."""
    inputs = make_samples(tmp_path / "in", 10, 3)
    out = tmp_path / "out"
    config = EmulatorConfig(credentials={canary_key: canary_secret}, time_scale=TIME_SCALE)
    async with run_emulator(config) as running:
        command = _command(running, inputs, out)
        code, output = await _interrupt(command, ": restoring", signals)
        assert code == 130, output
        assert "rerun the same command to resume" in output
        uploads_before = sum(1 for e in running.emulator.log if e.action == "UploadMedia")
        if signals == 1:  # a graceful stop leaves no call unanswered
            assert _open_intents(out / ".recuro-journal.sqlite") == 0
        result = await anyio.run_process(command, env=_env(), check=False)
        log = running.emulator.log
        left = running.emulator.media_ids()
    assert result.returncode == 0, result.stderr.decode()
    assert uploads_before < 10, "the first Ctrl-C came before every upload"
    uploads = collections.Counter(
        e.file_id for e in log if e.action == "UploadMedia" and e.status == 200
    )
    jobs = collections.Counter(e.file_id for e in log if e.action == "StartJob" and e.status == 200)
    assert len(jobs) == 10
    assert set(jobs.values()) == {1}
    assert len(uploads) <= 10 + signals - 1  # an upload cut off by the second Ctrl-C may be redone
    assert left == []
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(p.stem + ".mp4" for p in inputs)
