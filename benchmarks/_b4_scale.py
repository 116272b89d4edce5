"""B4: many near-instant items through ``recuro restore``: orchestrator CPU per item, peak RSS, journal size.

The emulator runs in its own process (`benchmarks._emuhost`) with a tiny time scale, so processing is
near-instant and the rate window short; the orchestrator is the shipped command in its own process, so its
CPU (user + sys from its rusage) excludes the emulator's.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from benchmarks._b1_batch import LIMIT, PERIOD, _log_figures, _restore_command
from benchmarks._measure import (
    MIB,
    EmulatorHost,
    Section,
    Settings,
    Table,
    Target,
    fmt,
    python_env,
    run_measured,
)


def _inputs(directory: Path, n: int, seed: int) -> list[Path]:
    rng = random.Random(f"{seed}:b4")
    directory.mkdir(parents=True)
    paths = []
    for i in range(n):
        path = directory / f"clip{i:06d}.mp4"
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.randbytes(1024 - 12))
        paths.append(path)
    return paths


def run(settings: Settings) -> Section:
    """Run B4 and report it."""
    started = time.perf_counter()
    n = 1000 if settings.quick else 10_000
    ts = 0.001
    work = settings.work / "b4"
    work.mkdir(parents=True, exist_ok=True)
    try:
        section = _run(settings, work, n, ts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section.seconds = time.perf_counter() - started
    return section


def _run(settings: Settings, work: Path, n: int, ts: float) -> Section:
    inputs = _inputs(work / "in", n, settings.seed)
    listing = work / "inputs.list"
    listing.write_text("\n".join(str(p) for p in inputs) + "\n")
    out = work / "out"
    journal = work / "journal.sqlite"
    command = _restore_command()
    spec = {
        "files": str(work),
        "emulators": {
            "main": {
                "time_scale": ts,
                "max_concurrent_jobs": 100_000,
                "max_concurrent_fetches": 256,
                "media_dir": str(work / "emu"),
            }
        },
    }
    with EmulatorHost(spec, stderr_path=work / "host.stderr") as host:
        env = python_env()
        env["RECURO_API_KEY"] = host.info["api_key"]
        env["RECURO_API_SECRET"] = host.info["api_secret"]
        argv = [
            *command,
            "--from-file",
            str(listing),
            "--format",
            "Mp4H264",
            "--filter",
            "Noise",
            "--out",
            str(out),
            "--journal",
            str(journal),
            "--time-scale",
            repr(ts),
            "--base-url",
            host.info["emulators"]["main"]["base_url"],
        ]
        proc = run_measured(argv, cwd=work, env=env, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"recuro restore exited {proc.returncode}: {proc.stderr[-800:]}")
        figures = _log_figures(host.call("log", emulator="main"))
    outputs = sum(1 for p in out.iterdir() if p.is_file() and p.suffix == ".mp4")
    journal_bytes = {
        suffix: (journal.parent / (journal.name + suffix)).stat().st_size
        for suffix in ("", "-wal", "-shm")
        if (journal.parent / (journal.name + suffix)).exists()
    }
    total_journal = sum(journal_bytes.values())
    cpu_ms = proc.cpu / n * 1000
    parts = ", ".join(f"{suffix or 'db'}: {size:,} B" for suffix, size in journal_bytes.items())
    section = Section("B4", f"scale: {n:,} near-instant items")
    section.method = [
        (
            f"{n:,} local 1 KiB MP4 originals; `recuro restore --from-file LIST --format Mp4H264 --filter Noise "
            f"--time-scale {ts:g}` (default --max-active) as its own process against the emulator at time scale "
            f"{ts:g} (processing {16.5 * ts * 1000:.1f} ms per item; rate window {PERIOD * ts * 1000:g} ms) in a "
            "separate process, so the orchestrator's CPU and RSS are its own. Every item staged, uploaded, "
            "restored, downloaded (fsynced), deleted and journaled."
        ),
        (
            "CPU = user + sys of the orchestrator process (start-up, imports and the staging server that serves "
            "every original included); peak RSS = its sampled VmHWM; journal = the SQLite file plus WAL and "
            "shared-memory files after the run."
        ),
    ]
    section.tables.append(
        Table(
            "Figures",
            ["figure", "value"],
            [
                ["items done (outputs on disk)", f"{outputs:,} of {n:,}"],
                ["wall s", fmt(proc.wall, 1)],
                ["items per second", fmt(n / proc.wall, 1)],
                [
                    "orchestrator CPU s (user + sys)",
                    f"{fmt(proc.cpu, 2)} ({fmt(proc.user, 2)} + {fmt(proc.system, 2)})",
                ],
                ["orchestrator CPU per item", f"{cpu_ms:.3f} ms"],
                ["orchestrator peak RSS", f"{proc.max_rss_mib:.1f} MiB"],
                [
                    "journal size",
                    f"{total_journal / MIB:.2f} MiB ({parts}); {total_journal / n:,.0f} B per item",
                ],
                [
                    "API requests (per item)",
                    f"{figures['requests']:,} ({figures['requests'] / n:.2f})",
                ],
                [
                    "most requests in any window (arrived / admitted)",
                    f"{figures['max_window']} / {figures['max_window_admitted']} (limit {LIMIT})",
                ],
                ["refused by the emulator's rate limit", str(figures["refused"])],
            ],
        )
    )
    section.targets = [
        Target(
            "orchestrator CPU per item (B4)",
            "<= 2 ms",
            f"{cpu_ms:.3f} ms",
            cpu_ms <= 2.0,
            f"{n:,} items, whole process",
        ),
        Target(
            f"orchestrator peak RSS at {n:,} items (B4)",
            "<= 300 MiB",
            f"{proc.max_rss_mib:.1f} MiB",
            proc.max_rss_mib <= 300 if n >= 10_000 else None,
            "" if n >= 10_000 else "not the 10,000 of the target (quick run)",
        ),
    ]
    if outputs != n:
        section.notes.append(f"only {outputs} of {n} outputs on disk")
    return section
