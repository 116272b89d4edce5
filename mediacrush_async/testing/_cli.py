"""`mediacrush emulator`: serve the emulator on loopback until interrupted (the one module that prints)."""

from __future__ import annotations

import argparse
import functools
import shlex
import signal
import sys
from collections.abc import Sequence

import anyio

from ._config import EmulatorConfig
from ._emulator import MediaCrushEmulator

#: Exit codes (SPEC section 6).
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediacrush emulator",
        description="Serve an emulated MediaCrush server until interrupted. "
        "The first line printed is `export MEDIACRUSH_BASE_URL=<url>`, ready for a shell to source or "
        "eval; `MediaCrushClient()` and every `mediacrush` command read that variable.",
        epilog="example: mediacrush emulator --port 8081 > mediacrush.env &  "
        "then: . ./mediacrush.env && mediacrush upload cat.gif",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiply processing times and the 420 window"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests answered with a 500"
    )
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped responses")
    parser.add_argument(
        "--truncate-rate", type=float, default=0.0, help="share of downloads cut short"
    )
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, help="share of processings that fail"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--bandwidth", type=int, default=None, help="bytes/s per response")
    parser.add_argument(
        "--byte-limit", type=int, default=250_000_000, help="upload bytes per client per window"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault plan and album ids")
    return parser


def export_lines(base_url: str) -> str:
    """The `export MEDIACRUSH_BASE_URL=...` line (value shell-quoted) that points a shell at the emulator."""
    return f"export MEDIACRUSH_BASE_URL={shlex.quote(base_url)}\n"


async def _serve(config: EmulatorConfig, host: str, port: int) -> int:
    async with MediaCrushEmulator(config) as emulator, anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            base_url = await tg.start(functools.partial(emulator.serve, host=host, port=port))
            sys.stdout.write(export_lines(base_url))
            sys.stdout.write(f"# MediaCrush emulator serving on {base_url}; Ctrl-C stops it\n")
            sys.stdout.flush()
            async for signum in signals:
                tg.cancel_scope.cancel()
                return EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mediacrush emulator [--host H] [--port N] [--time-scale X] [--fault-rate P] [--seed S]`."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        args_list = args_list[1:]
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    try:
        config = EmulatorConfig(
            time_scale=args.time_scale,
            seed=args.seed,
            fault_rate=args.fault_rate,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            failure_rate=args.failure_rate,
            latency=args.latency,
            bandwidth=args.bandwidth,
            byte_limit=args.byte_limit,
        )
    except (TypeError, ValueError) as exc:
        sys.stderr.write(f"mediacrush emulator: {exc}\n")
        return EXIT_USAGE
    try:
        return anyio.run(_serve, config, args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"mediacrush emulator: cannot serve on {args.host}:{args.port}: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
