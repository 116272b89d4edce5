"""`recuro restore` (the orchestrator with the Recuro adapter) against the emulator over loopback."""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from orchestrator.cli._restore import add_restore_arguments, run_restore
from recuro_async.testing import (
    EmulatorConfig,
    RunningEmulator,
    expected_restored_bytes,
    make_samples,
    run_emulator,
)

TIME_SCALE = 0.02
FORMAT, FILTERS, SCALE = "Mp4H264", ["Noise", "ColorBalance"], "1080"


def emulator(secret: str, key: str, **changes):
    """The emulator on loopback with the suite's canary credentials (opened inside each test)."""
    config = EmulatorConfig(credentials={key: secret}, time_scale=TIME_SCALE, **changes)
    return run_emulator(config)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="recuro restore")
    add_restore_arguments(parser)
    return parser.parse_args(argv)


async def restore(running: RunningEmulator, inputs: list[str], out: Path, *extra: str) -> int:
    """Run `recuro restore` in-process with the standard job settings; returns the exit code."""
    argv = [
        *inputs,
        "--format",
        FORMAT,
        *[a for f in FILTERS for a in ("--filter", f)],
        "--scale",
        SCALE,
        "--out",
        str(out),
        "--base-url",
        running.base_url,
        "--time-scale",
        str(TIME_SCALE),
        *extra,
    ]
    return await run_restore(parse(argv), tty=False)


def api_entries(running: RunningEmulator):
    return [e for e in running.emulator.log if e.action != "download"]


def started_jobs(running: RunningEmulator) -> collections.Counter[str]:
    """Accepted StartJobs per file_id (refusals such as MediaNotReady start nothing)."""
    return collections.Counter(
        e.file_id for e in running.emulator.log if e.action == "StartJob" and e.status == 200
    )


def expected(original: Path) -> bytes:
    return expected_restored_bytes(
        original.read_bytes(), output_format=FORMAT, filters=FILTERS, output_scaling=SCALE
    )


def secret_free(paths: list[Path], secret: str) -> None:
    for path in paths:
        assert secret.encode() not in path.read_bytes(), f"the secret leaked into {path}"


@pytest.fixture
def samples(tmp_path):
    def make(count: int, seed: int = 7) -> list[Path]:
        return make_samples(tmp_path / "in", count, seed)

    return make


@pytest.mark.slow
async def test_a_batch_of_100_restores_byte_for_byte(
    tmp_path, samples, canary_key, canary_secret, capsys
):
    """100 local files: every output is the expected bytes, the limit holds, one job each, nothing left."""
    originals = samples(100)
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    async with emulator(canary_secret, canary_key) as running:
        code = await restore(
            running, [str(p) for p in originals], out, "--report", str(report), "--max-active", "40"
        )
        peak = running.emulator.peak_window_count()
        requests = len(api_entries(running))
        jobs = started_jobs(running)
        uploads = [e for e in api_entries(running) if e.action == "UploadMedia"]
        left = running.emulator.media_ids()
    assert code == 0
    for original in originals:
        assert (out / (original.stem + ".mp4")).read_bytes() == expected(original)
    assert peak <= 200
    assert len(uploads) == 100
    assert len(jobs) == 100
    assert set(jobs.values()) == {1}
    assert left == []
    assert requests / 100 <= 4.0, f"{requests / 100:.2f} API requests per item"
    data = json.loads(report.read_text())
    assert data["totals"] == {"done": 100, "failed": 0, "parked": 0, "pending": 0}
    assert all(item["sha256"] and item["remote_deleted"] for item in data["items"])
    secret_free([report, out / ".recuro-journal.sqlite"], canary_secret)
    printed = capsys.readouterr()
    assert canary_secret not in printed.out + printed.err
    assert "summary: 100 done, 0 failed" in printed.out


async def test_keep_remote_keeps_the_media(tmp_path, samples, canary_key, canary_secret):
    """With --keep-remote every restored media stays on the account."""
    originals = samples(4)
    async with emulator(canary_secret, canary_key) as running:
        code = await restore(
            running, [str(p) for p in originals], tmp_path / "out", "--keep-remote"
        )
        left = running.emulator.media_ids()
        deletes = [e for e in running.emulator.log if e.action == "DeleteMedia"]
    assert code == 0
    assert len(left) == 4
    assert deletes == []


async def test_a_failing_job_fails_its_item_and_the_rest_finish(
    tmp_path, samples, canary_key, canary_secret
):
    """A job the service fails carries the server's error code into the report; exit code 1."""
    originals = samples(12)
    report = tmp_path / "report.json"
    async with emulator(canary_secret, canary_key, job_failure_rate=0.25, seed=3) as running:
        code = await restore(
            running, [str(p) for p in originals], tmp_path / "out", "--report", str(report)
        )
        left = running.emulator.media_ids()
    data = json.loads(report.read_text())
    failed = [item for item in data["items"] if item["outcome"] == "failed"]
    done = [item for item in data["items"] if item["outcome"] == "done"]
    assert code == 1
    assert failed, "the seeded plan fails at least one job"
    assert {item["error_code"] for item in failed} == {"JobFailed"}
    assert len(done) + len(failed) == 12
    assert data["totals"]["failed"] == len(failed)
    assert left == []  # the failed items' media was deleted too


async def test_webhook_mode_costs_at_most_3_1_requests_per_item(
    tmp_path, samples, canary_key, canary_secret
):
    """With callbacks (--notify-url), 50 items need <= 3.1 API requests each."""
    originals = samples(50, seed=11)
    async with emulator(canary_secret, canary_key) as running:
        code = await restore(
            running, [str(p) for p in originals], tmp_path / "out", "--notify-url", "local"
        )
        requests = len(api_entries(running))
        callbacks = running.emulator.callbacks
        left = running.emulator.media_ids()
    assert code == 0
    assert requests / 50 <= 3.1, collections.Counter(e.action for e in api_entries(running))
    assert callbacks
    assert left == []
    for original in originals:
        assert (tmp_path / "out" / (original.stem + ".mp4")).read_bytes() == expected(original)


async def test_a_rerun_skips_done_items(tmp_path, samples, canary_key, canary_secret, capsys):
    """Running the same command again uploads nothing and reports every item done."""
    originals = samples(3)
    inputs = [str(p) for p in originals]
    async with emulator(canary_secret, canary_key) as running:
        assert await restore(running, inputs, tmp_path / "out") == 0
        before = len(running.emulator.log)
        capsys.readouterr()
        assert await restore(running, inputs, tmp_path / "out") == 0
        after = running.emulator.log[before:]
    assert [e.action for e in after] == []
    assert capsys.readouterr().out.count("(done earlier)") == 3


def _bad_input_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    good = make_samples(tmp_path / "good", 1)[0]
    unsupported = tmp_path / "notes.txt"
    unsupported.write_text("not media")
    folder = tmp_path / "folder.mov"
    folder.mkdir()
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return {
        "missing file": ([str(tmp_path / "absent.mov")], "absent.mov: no such file"),
        "not a file": ([str(folder)], "not a regular file"),
        "unsupported container": ([str(unsupported)], "unsupported container '.txt'"),
        "unknown filter": ([str(good), "--filter", "Sparkle"], "Sparkle"),
        "unknown format": ([str(good), "--format", "Gif"], "Gif"),
        "out not writable": (
            [str(good), "--out", str(blocker / "sub")],
            "not a writable directory",
        ),
        "no inputs": ([], "no inputs"),
        "not http": (["ftp://example.org/a.mov"], "only http(s) URLs"),
    }


async def test_bad_input_is_refused_before_any_request(tmp_path, canary_key, canary_secret, capsys):
    """Each kind of bad input prints a clear message, exits 2, and sends nothing to the service."""
    cases = _bad_input_cases(tmp_path)
    async with emulator(canary_secret, canary_key) as running:
        for name, (argv, message) in cases.items():
            out = tmp_path / f"out-{name.replace(' ', '-')}"
            code = await restore(running, [], out, *argv)  # later options override the defaults
            err = capsys.readouterr().err
            assert code == 2, name
            assert message in err, (name, err)
        assert running.emulator.log == []


def _unreadable(tmp_path: Path) -> Path:
    """A .mov that exists but cannot be read: mode 000, or (as root, where modes do not bind) a link
    to /proc/self/mem, whose first byte is unmapped."""
    path = make_samples(tmp_path / "in", 1)[0]
    path.chmod(0)
    if os.access(path, os.R_OK):
        path.chmod(0o600)
        path = tmp_path / "in" / "unreadable.mov"
        path.symlink_to("/proc/self/mem")
    return path


async def test_unreadable_file_is_refused(tmp_path, canary_key, canary_secret, capsys):
    """A file that cannot be read is named in the error, before any request."""
    path = _unreadable(tmp_path)
    async with emulator(canary_secret, canary_key) as running:
        code = await restore(running, [str(path)], tmp_path / "out")
        assert running.emulator.log == []
    assert code == 2
    assert "cannot read the file" in capsys.readouterr().err


async def test_a_journal_of_another_job_is_refused(
    tmp_path, samples, canary_key, canary_secret, capsys
):
    """Rerunning into the same journal with other settings is refused before any request."""
    originals = [str(p) for p in samples(2)]
    async with emulator(canary_secret, canary_key) as running:
        assert await restore(running, originals, tmp_path / "out") == 0
        before = len(running.emulator.log)
        capsys.readouterr()
        code = await restore(running, originals, tmp_path / "out", "--format", "MovProRes4444")
        assert len(running.emulator.log) == before
    assert code == 2
    assert "belongs to a different job spec" in capsys.readouterr().err


async def test_journal_holds_no_secret_and_one_row_per_item(
    tmp_path, samples, canary_key, canary_secret
):
    """The journal has one row per input, intents for every upload and start, and no credentials."""
    originals = samples(3)
    async with emulator(canary_secret, canary_key) as running:
        assert await restore(running, [str(p) for p in originals], tmp_path / "out") == 0
    journal = tmp_path / "out" / ".recuro-journal.sqlite"
    secret_free([journal], canary_secret)
    conn = sqlite3.connect(journal)
    try:
        rows = conn.execute("SELECT stage FROM items").fetchall()
        kinds = collections.Counter(
            kind
            for (kind,) in conn.execute("SELECT kind FROM intents WHERE outcome != 'not-ready'")
        )
    finally:
        conn.close()
    assert rows == [("done",)] * 3
    assert kinds == {"upload": 3, "start": 3}


async def test_demo_runs_the_whole_job(tmp_path, capsys):
    """`recuro demo` restores its samples through the restore path and verifies every output."""
    from orchestrator.cli.recuro import demo

    args = argparse.Namespace(count=8, time_scale=TIME_SCALE, out=tmp_path, seed=5)
    assert await demo(args, tty=False) == 0
    out = capsys.readouterr().out
    assert "8/8 outputs byte-identical" in out
    assert "0 media left on the account" in out


async def test_url_inputs_pass_through(tmp_path, canary_key, canary_secret):
    """An http(s) input is handed to the service as it is (no staging)."""
    original = make_samples(tmp_path / "in", 1)[0]
    data = original.read_bytes()

    async def media(scope, receive, send):
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})

    from recuro_async.testing import serve_asgi

    async with emulator(canary_secret, canary_key) as running, anyio.create_task_group() as tg:
        origin = await tg.start(serve_asgi, media)
        code = await restore(
            running, [f"{origin.rstrip('/')}/clip{original.suffix}"], tmp_path / "out"
        )
        tg.cancel_scope.cancel()
    assert code == 0
    assert (tmp_path / "out" / "clip.mp4").read_bytes() == expected(original)
