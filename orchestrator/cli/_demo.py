"""`PROG demo`: a service's main job on its embedded emulator, end to end, offline (no credentials, no network).

The runner is the same for every service: write sample media, start the emulator on loopback, run the
batch through exactly the command's own path (staging, journal, downloads, progress), check every output
byte for byte against what the emulator is known to produce, and print one line of what happened. A service
brings a `DemoHook`: its samples, its emulator, its batch, what to read off the emulator, and its checks.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread

from orchestrator._stages import Item

from ._main import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Service, positive_float

__all__ = ["DemoHook", "add_demo_options", "demo_handler", "run_demo"]


class DemoHook(Protocol):
    """A service's part of its demo."""

    def samples(self, directory: Path, args: argparse.Namespace) -> list[Path]:
        """Write the sample inputs into `directory` (blocking)."""
        ...

    def emulator(self, time_scale: float, seed: int) -> AbstractAsyncContextManager[Any]:
        """The emulator, started on loopback (a running emulator with `base_url` and `emulator`)."""
        ...

    async def run(
        self,
        base_url: str,
        samples: Sequence[Path],
        root: Path,
        args: argparse.Namespace,
        tty: bool | None,
    ) -> tuple[int, Sequence[Item]]:
        """Run the command's batch on the samples (its outputs and report under `root`); its exit code
        and items."""
        ...

    def observe(self, emulator: Any, count: int) -> tuple[int, str]:
        """What the emulator saw: media left on it, and the requests it served (one phrase)."""
        ...

    def verify(
        self, samples: Sequence[Path], root: Path, items: Sequence[Item]
    ) -> tuple[list[str], str]:
        """Every problem with the outputs, and one phrase saying what verified (blocking)."""
        ...


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
    hook: DemoHook, service: Service[Any], args: argparse.Namespace, *, tty: bool | None = None
) -> int:
    """Run the demo; returns the exit code (0 when every output verified and nothing was left behind)."""
    with tempfile.TemporaryDirectory(prefix=f"{service.voice.prog}-demo-") as scratch:
        root = args.out if args.out is not None else Path(scratch)
        samples = await anyio.to_thread.run_sync(hook.samples, root / "samples", args)
        started = time.monotonic()
        async with hook.emulator(args.time_scale, args.seed) as running:
            print(f"emulator on {running.base_url} (time scale {args.time_scale:g})", flush=True)
            code, items = await hook.run(running.base_url, samples, root, args, tty)
            left, requests = hook.observe(running.emulator, len(samples))
        elapsed = time.monotonic() - started
        problems, verified = await anyio.to_thread.run_sync(hook.verify, samples, root, items)
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


def demo_handler(hook: DemoHook, service: Service[Any]) -> Callable[[argparse.Namespace], int]:
    """The synchronous `PROG demo` handler the dispatcher calls."""

    def handler(args: argparse.Namespace) -> int:
        service.configure_logging(verbose=False)
        return service.run(lambda: run_demo(hook, service, args))

    return handler
