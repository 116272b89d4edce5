"""`recuro emulator`: serve the emulator on loopback and print how to reach it.

The first three lines on stdout are shell-sourceable and `eval`-able: ``export RECURO_BASE_URL=...``,
``export RECURO_API_KEY=...``, ``export RECURO_API_SECRET=...`` (values quoted with `shlex.quote`); then it
serves until interrupted (Ctrl-C or SIGTERM), exiting 0. `RecuroClient()` and every `recuro` command read
the same three variables.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import Final

import anyio

from recuro_async.testing._config import ALTERNATE_ERROR_CODES, FETCH_TIMINGS, EmulatorConfig
from recuro_async.testing._emulator import run_emulator

EXIT_INTERRUPTED: Final = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recuro emulator",
        description="Run the Recuro Media API emulator on loopback (demo credentials, no network). "
        "It first prints three lines, `export RECURO_BASE_URL=...`, `export RECURO_API_KEY=...` and "
        "`export RECURO_API_SECRET=...`, for a shell to source or eval, then serves until Ctrl-C.",
        epilog="example: recuro emulator --port 8080 --time-scale 0.01 > recuro.env &  "
        "then: . ./recuro.env && recuro filters",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="port to bind (default 0: any free port)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplies processing durations and the rate-limit window (0.01 = 100x faster)",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="500s at P, dropped responses and truncated downloads at P/2, failing jobs at P/5",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of ids and faults (default 0)")
    parser.add_argument("--quirks", action="store_true", help="odd key case and string progress")
    parser.add_argument(
        "--refusal", choices=("400", "429"), default="400", help="rate-limit refusal form"
    )
    parser.add_argument(
        "--max-concurrent-jobs", type=int, default=8, help="jobs running at once (default 8)"
    )
    parser.add_argument(
        "--latency",
        type=_latency,
        default=(0.0, 0.0),
        metavar="MIN-MAX",
        help="extra delay of each API response in seconds, uniform in MIN-MAX and seeded by --seed "
        "(one number: 0 to it). Example: --latency 0.02-0.4",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        metavar="F",
        help="vary each media's analysis and each job's running time by a factor drawn from "
        "[1-F, 1+F], seeded by --seed (0 <= F < 1; default 0: exact times). Example: --jitter 0.3",
    )
    parser.add_argument(
        "--callback-loss",
        type=float,
        default=0.0,
        metavar="P",
        help="never send this share of notify_url callbacks (drawn per media and job, seeded by --seed; "
        "default 0). Example: --callback-loss 0.1",
    )
    parser.add_argument(
        "--fetch-timing",
        choices=FETCH_TIMINGS,
        default="after-answer",
        help="when UploadMedia fetches the original: after-answer (default: answer at once, fetch in "
        "the background) or before-answer (fetch the whole original, then answer the file_id)",
    )
    parser.add_argument(
        "--bandwidth", type=float, default=None, help="download cap in bytes/s per connection"
    )
    parser.add_argument(
        "--restored-url-ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="sign restored-file URLs so that they answer 403 this long after they were handed out "
        "(scaled by --time-scale; default: they never expire). Example: --restored-url-ttl 900",
    )
    parser.add_argument(
        "--error-codes",
        choices=("ours", "alternate"),
        default="ours",
        help="the error codes the API document does not name: this emulator's own (default), or "
        "another plausible set, to check that a client decides nothing by them",
    )
    return parser


def _latency(text: str) -> tuple[float, float]:
    """`MIN-MAX` (or `MAX`, meaning 0-MAX) seconds, as argparse's type for --latency."""
    low, dash, high = text.partition("-")
    try:
        bounds = (float(low), float(high)) if dash else (0.0, float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--latency takes seconds as MIN-MAX or MAX (e.g. 0.02-0.4), got {text!r}"
        ) from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"--latency needs 0 <= MIN <= MAX seconds, got {text!r}")
    return bounds


def export_lines(base_url: str, api_key: str, api_secret: str) -> str:
    """The three `export NAME=value` lines (values shell-quoted) that point a shell at the emulator."""
    values = (
        ("RECURO_BASE_URL", base_url),
        ("RECURO_API_KEY", api_key),
        ("RECURO_API_SECRET", api_secret),
    )
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `recuro emulator [--port N] [--time-scale X] [--fault-rate P] [--seed S] [--host H]`."""
    args = _parser().parse_args(argv)
    try:
        config = EmulatorConfig(
            time_scale=args.time_scale,
            seed=args.seed,
            quirks=args.quirks,
            refusal=args.refusal,
            max_concurrent_jobs=args.max_concurrent_jobs,
            bandwidth=args.bandwidth,
            latency_min=args.latency[0],
            latency=args.latency[1],
            restored_url_ttl=args.restored_url_ttl,
            jitter=args.jitter,
            callback_loss=args.callback_loss,
            fetch_timing=args.fetch_timing,
            error_codes=ALTERNATE_ERROR_CODES if args.error_codes == "alternate" else {},
        )
        if args.fault_rate:
            config = config.with_faults(args.fault_rate)
    except ValueError as exc:
        sys.stderr.write(f"recuro emulator: {exc}\n")
        return 2
    try:
        return anyio.run(_serve, config, args.host, args.port)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as exc:
        sys.stderr.write(f"recuro emulator: cannot serve on {args.host}:{args.port}: {exc}\n")
        return 2


async def _serve(config: EmulatorConfig, host: str, port: int) -> int:
    """Serve until a signal: Ctrl-C (SIGINT) exits 130 as every command here does, SIGTERM 0."""
    async with run_emulator(config, host=host, port=port) as running:
        sys.stdout.write(export_lines(running.base_url, running.api_key, running.api_secret))
        sys.stdout.flush()
        sys.stderr.write("recuro emulator: serving; press Ctrl-C to stop\n")
        sys.stderr.flush()
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                return EXIT_INTERRUPTED if signum == signal.SIGINT else 0
    return 0
