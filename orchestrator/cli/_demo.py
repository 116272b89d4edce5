"""`recuro demo`: the project's main job on the embedded emulator, end to end, offline.

Starts the Recuro emulator on loopback, writes a few dozen sample media files of varied sizes and
containers (valid magic bytes), restores them as one batch through exactly the `recuro restore` path
(local staging server, journal, downloads, progress), checks every output byte for byte against the
emulator's expected restored bytes, and prints the summary. No credentials, no network.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from ._main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, configure_logging, run_async
from ._restore import VOICE, add_restore_arguments, run_restore

__all__ = ["add_demo_arguments", "main_demo", "make_samples", "run_demo"]

DEMO_FORMAT: Final = "Mp4H264"
DEMO_FILTERS: Final = ("Noise", "ColorBalance")
DEMO_SCALE: Final = "1080"

# the first bytes of each supported container, as the emulator sniffs them
_MAGIC: Final = {
    ".mkv": bytes.fromhex("1A45DFA3") + b"\x93\x42\x82\x88matroska",
    ".mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
    ".mov": b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ",
    ".wav": b"RIFF\x24\x00\x10\x00WAVEfmt ",
    ".mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    ".mpg": bytes.fromhex("000001BA") + b"\x44\x00\x04\x00\x04\x01",
    ".mxf": bytes.fromhex("060E2B34020501010D01020101020400"),
}


def make_samples(directory: Path, count: int, seed: int = 7) -> list[Path]:
    """Write `count` sample media files of varied sizes (4 KiB to ~3 MiB) and containers (blocking)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    extensions = list(_MAGIC)
    paths = []
    for n in range(count):
        ext = extensions[n % len(extensions)]
        size = int(4096 * 2 ** rng.uniform(0, 9.6))  # log-uniform: many small, a few large
        magic = _MAGIC[ext]
        path = directory / f"reel-{n + 1:03d}{ext}"
        path.write_bytes(magic + rng.randbytes(max(size - len(magic), 0)))
        paths.append(path)
    return paths


def _verify(outputs: dict[Path, Path]) -> list[str]:
    """Compare each output with the emulator's expected restored bytes (blocking)."""
    from recuro_async.testing import expected_restored_bytes

    problems = []
    for original, output in outputs.items():
        expected = expected_restored_bytes(
            original.read_bytes(),
            output_format=DEMO_FORMAT,
            filters=list(DEMO_FILTERS),
            output_scaling=DEMO_SCALE,
        )
        if not output.is_file():
            problems.append(f"{original.name}: no output")
        elif output.read_bytes() != expected:
            problems.append(f"{original.name}: output differs from the expected restored bytes")
    return problems


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `recuro demo`."""
    parser.add_argument(
        "--count", type=int, default=36, help="sample files to restore (default: 36)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.02,
        help="emulator speed: 0.02 runs 50 times faster than the service (default)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="keep samples and outputs here (default: a temp dir)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the samples and the emulator")


async def run_demo(args: argparse.Namespace, *, tty: bool | None = None) -> int:
    """Run the demo; returns the exit code."""
    from recuro_async.testing import DEMO_API_KEY, DEMO_API_SECRET, EmulatorConfig, run_emulator

    if args.count < 1 or not args.time_scale > 0:
        VOICE.fail("--count must be >= 1 and --time-scale > 0")
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="recuro-demo-") as scratch:
        root = args.out or Path(scratch)
        samples = await anyio.to_thread.run_sync(
            make_samples, root / "samples", args.count, args.seed
        )
        out = root / "restored"
        config = EmulatorConfig(time_scale=args.time_scale, seed=args.seed)
        started = time.monotonic()
        async with run_emulator(config) as running:
            print(f"emulator on {running.base_url} (time scale {args.time_scale})", flush=True)
            parser = argparse.ArgumentParser(prog="recuro restore")
            add_restore_arguments(parser)
            restore_args = parser.parse_args(
                [
                    *map(str, samples),
                    "--format",
                    DEMO_FORMAT,
                    *[a for name in DEMO_FILTERS for a in ("--filter", name)],
                    "--scale",
                    DEMO_SCALE,
                    "--out",
                    str(out),
                    "--report",
                    str(root / "report.json"),
                    "--base-url",
                    running.base_url,
                    "--time-scale",
                    str(args.time_scale),
                ]
            )
            code = await run_restore(
                restore_args, credentials=(DEMO_API_KEY, DEMO_API_SECRET), tty=tty
            )
            requests = sum(1 for e in running.emulator.log if e.action != "download")
            peak = running.emulator.peak_window_count()
            left = running.emulator.media_ids()
        elapsed = time.monotonic() - started
        outputs = {p: out / (p.stem + ".mp4") for p in samples}
        problems = await anyio.to_thread.run_sync(_verify, outputs)
        for problem in problems:
            VOICE.say(f"verify: {problem}")
        print(
            f"demo: {len(samples) - len(problems)}/{len(samples)} outputs byte-identical to the "
            f"expected restored bytes; {requests} API requests ({requests / len(samples):.2f} per item), "
            f"peak {peak} in any rate window (limit 200), {len(left)} media left on the account, "
            f"{elapsed:.1f} s",
            flush=True,
        )
        if args.out is not None:
            print(f"samples, outputs and report.json kept in {root}", flush=True)
    if code != EXIT_OK:
        return code
    return EXIT_OK if not problems and not left else EXIT_FAILED


def main_demo(args: argparse.Namespace) -> int:
    """`recuro demo`: the synchronous entry point the dispatcher calls."""
    configure_logging("recuro", ["recuro_async"], verbose=False)
    return run_async(VOICE, lambda: run_demo(args))


if __name__ == "__main__":  # pragma: no cover - `python -m orchestrator.cli._demo`
    parser = argparse.ArgumentParser(prog="recuro demo")
    add_demo_arguments(parser)
    sys.exit(main_demo(parser.parse_args()))
