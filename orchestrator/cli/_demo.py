"""`PROG demo`: a service's main job on its embedded emulator, end to end, offline (no credentials, no network).

The same for every service: write the `Demo`'s samples (`orchestrator._demo`), start its emulator, run the
command's own batch on them (staging, journal, downloads, progress: a `DemoBatch`), check every output
against what the emulator is known to produce, and print one line of what happened.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from orchestrator._demo import Demo
from orchestrator._report import Report, build_report

from ._main import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Service, positive_float

__all__ = ["DemoBatch", "add_demo_options", "run_demo"]

DemoBatch = Callable[[str, Sequence[Path], Path, argparse.Namespace, bool | None], Awaitable[int]]
"""The command's batch on the samples: `(base_url, samples, root, args, tty)` -> its exit code; its outputs
go under `root`, its report to `root/report.json`."""


def add_demo_options(parser: argparse.ArgumentParser, *, kept: str) -> None:
    """--time-scale, --out (keeping `kept` there) and --seed."""
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        default=0.02,
        metavar="X",
        help="emulator speed: 0.02 runs 50 times faster than the real service (default)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"keep {kept} here (default: a temp dir)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the samples and the emulator")


async def run_demo(
    demo: Demo,
    batch: DemoBatch,
    service: Service[Any],
    args: argparse.Namespace,
    *,
    tty: bool | None = None,
) -> int:
    """Run the demo; returns the exit code (0 when every output verified and nothing was left behind)."""
    with tempfile.TemporaryDirectory(prefix=f"{service.voice.prog}-demo-") as scratch:
        root = args.out if args.out is not None else Path(scratch)
        count = getattr(args, "count", 0)
        samples = await anyio.to_thread.run_sync(
            lambda: demo.samples(root / "samples", count=count, seed=args.seed)
        )
        started = time.monotonic()
        async with demo.emulator(args.time_scale, args.seed) as running:
            print(f"emulator on {running.base_url} (time scale {args.time_scale:g})", flush=True)
            code = await batch(running.base_url, samples, root, args, tty)
            left, requests = demo.observe(running.emulator, len(samples))
        elapsed = time.monotonic() - started
        written = anyio.Path(root / "report.json")
        text = await written.read_text(encoding="utf-8") if await written.exists() else None
        report = Report.from_json(text) if text else build_report([], service="", settings={})
        problems, verified = await anyio.to_thread.run_sync(demo.verify, samples, report)
        for problem in problems:
            service.voice.fail(f"verify: {problem}")
        print(f"demo: {verified}; {requests}, {elapsed:.1f} s", flush=True)
        if args.out is not None:
            print(f"samples, outputs and report.json kept in {root}", flush=True)
    if code in (EXIT_INTERRUPTED, EXIT_USAGE):
        return code
    ok = not problems and not left
    print("demo: all done" if ok else "demo: something did not verify (see above)", flush=True)
    return EXIT_OK if ok else EXIT_FAILED
