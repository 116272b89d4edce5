"""``python3 -m benchmarks [--quick] [--only B2,B3] [--out PATH] [--update-results]``: run the benchmarks.

The results go to ``benchmarks/RESULTS-latest.md`` (git-ignored) or ``--out PATH``. The committed numbers of
record, ``benchmarks/RESULTS.md``, are rewritten only by a full run asked to: ``--update-results``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from benchmarks._measure import ROOT, Section, Settings, Target, machine_info, render

RESULTS: Final = ROOT / "benchmarks" / "RESULTS.md"
LATEST: Final = ROOT / "benchmarks" / "RESULTS-latest.md"

_MODULES = {
    "B1": ("benchmarks._b1_batch", "batch through the Recuro pipeline"),
    "B2": ("benchmarks._b2_download", "download of a restored file"),
    "B3": ("benchmarks._b3_limiter", "limiter"),
    "B4": ("benchmarks._b4_scale", "scale: many near-instant items"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m benchmarks",
        description="Run the SPEC 7 benchmarks side by side with their baselines. The results go to "
        "benchmarks/RESULTS-latest.md (or --out); only a full run with --update-results rewrites the "
        "committed benchmarks/RESULTS.md.",
        epilog="examples: python3 -m benchmarks --quick (a smoke run, a few minutes); "
        "python3 -m benchmarks --only B3; python3 -m benchmarks --update-results (about 15 minutes)",
    )
    parser.add_argument(
        "--only", default="B1,B2,B3,B4", help="comma-separated subset, e.g. B2,B3 (default: all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run, not the numbers of record"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to write the results (default: benchmarks/RESULTS-latest.md)",
    )
    parser.add_argument(
        "--update-results",
        action="store_true",
        help="write the committed benchmarks/RESULTS.md (a full run only: not with --quick, --only or "
        "--out)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "benchmarks" / "_work",
        help="scratch directory (default benchmarks/_work); a run-PID folder in it is removed afterwards",
    )
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the random patterns")
    return parser


def _failed(key: str, title: str, exc: BaseException, seconds: float) -> Section:
    lines = traceback.format_exception(exc)
    return Section(
        key,
        title,
        targets=[Target("(benchmark failed)", "-", f"{type(exc).__name__}: {exc}", None)],
        notes=["The benchmark raised; the traceback's last lines:", *(lines[-6:])],
        seconds=seconds,
    )


def _keys(only: str) -> list[str]:
    return [k.strip().upper() for k in only.split(",") if k.strip()]


def _problem(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot run, or None."""
    keys = _keys(args.only)
    unknown = [k for k in keys if k not in _MODULES]
    if unknown or not keys:
        return f"--only: unknown benchmark(s) {unknown}; choose from {list(_MODULES)}"
    if args.update_results:
        partial = sorted(set(_MODULES) - set(keys))
        if args.quick or partial or args.out is not None:
            why = "--quick" if args.quick else ("--out" if args.out is not None else "--only")
            return (
                f"--update-results rewrites the numbers of record and needs a full run; drop {why} "
                "(or drop --update-results to write benchmarks/RESULTS-latest.md)"
            )
    return None


def _destination(args: argparse.Namespace) -> Path:
    if args.update_results:
        return RESULTS
    return Path(args.out) if args.out is not None else LATEST


def destination(argv: Sequence[str]) -> Path:
    """Where a run with `argv` writes its results (RESULTS.md only for a full `--update-results` run)."""
    return _destination(_parser().parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks (in order B1..B4) and write the results."""
    args = _parser().parse_args(argv)
    problem = _problem(args)
    if problem is not None:
        sys.stderr.write(f"python3 -m benchmarks: {problem}\n")
        return 2
    keys = _keys(args.only)
    out = _destination(args)
    work: Path = args.work.resolve() / f"run-{os.getpid()}"  # only this is removed afterwards
    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(quick=args.quick, work=work, seed=args.seed)
    machine = machine_info()
    began = time.perf_counter()
    sections: list[Section] = []
    failures = 0
    for key in sorted(keys):
        module_name, title = _MODULES[key]
        print(f"== {key}: {title}{' (quick)' if args.quick else ''}", flush=True)
        started = time.perf_counter()
        try:
            section = importlib.import_module(module_name).run(settings)
        except Exception as exc:
            failures += 1
            section = _failed(key, title, exc, time.perf_counter() - started)
            traceback.print_exception(exc)
        sections.append(section)
        for target in section.targets:
            mark = "--" if target.ok is None else ("ok" if target.ok else "MISS")
            print(f"   [{mark:>4}] {target.figure}: {target.measured} (target {target.target})")
        print(f"   {section.seconds:.0f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    command = "python3 -m benchmarks" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    text = render(
        sections,
        machine=machine,
        command=command,
        quick=args.quick,
        load_end=load,
        total_seconds=time.perf_counter() - began,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
