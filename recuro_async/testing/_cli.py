"""`recuro emulator`: serve the emulator on loopback and print how to reach it.

The first three lines on stdout are shell-sourceable (``RECURO_BASE_URL=...``, ``RECURO_API_KEY=...``,
``RECURO_API_SECRET=...``); then it serves until interrupted (Ctrl-C or SIGTERM), exiting 0.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence

import anyio

from recuro_async.testing._config import EmulatorConfig
from recuro_async.testing._emulator import run_emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recuro emulator",
        description="Run the Recuro Media API emulator on loopback (demo credentials, no network).",
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
    return parser


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
            restored_url_ttl=args.restored_url_ttl,
        )
        if args.fault_rate:
            config = config.with_faults(args.fault_rate)
    except ValueError as exc:
        sys.stderr.write(f"recuro emulator: {exc}\n")
        return 2
    try:
        anyio.run(_serve, config, args.host, args.port)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        sys.stderr.write(f"recuro emulator: cannot serve on {args.host}:{args.port}: {exc}\n")
        return 2
    return 0


async def _serve(config: EmulatorConfig, host: str, port: int) -> None:
    async with run_emulator(config, host=host, port=port) as running:
        lines = (
            f"RECURO_BASE_URL={shlex.quote(running.base_url)}\n"
            f"RECURO_API_KEY={shlex.quote(running.api_key)}\n"
            f"RECURO_API_SECRET={shlex.quote(running.api_secret)}\n"
        )
        sys.stdout.write(lines)
        sys.stdout.flush()
        sys.stderr.write("recuro emulator: serving; press Ctrl-C to stop\n")
        sys.stderr.flush()
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
