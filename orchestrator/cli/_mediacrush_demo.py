"""`mediacrush demo`: the MediaCrush job on the embedded emulator, end to end, offline.

Starts the MediaCrush emulator on loopback with a small time scale, writes a handful of sample media files
(GIF, PNG, MP3 and MP4, recognised by their magic bytes) and one text file that is not media, uploads them
as one batch through exactly the `mediacrush upload --out DIR --delete` path (orchestrator, journal,
downloads, progress), checks every derived file byte for byte against the emulator's
`expected_derived_bytes`, and prints the summary. The text file is expected to fail as `unrecognised`.
Exit 0 when every media file verified and the text file failed as expected. No network.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from mediacrush_async import content_hash
from orchestrator._stages import Item, Stage

from ._main import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ExamplesFormatter,
    configure_logging,
    run_async,
)
from ._mediacrush_cmds import VOICE, UploadOptions, UploadOutcome, run_upload

__all__ = ["NON_MEDIA", "SAMPLES", "add_demo_command", "make_samples", "run_demo", "verify"]

# (file name, emulator sample kind, size in bytes)
SAMPLES: Final = (
    ("cat.gif", "gif", 48_000),
    ("loop.gif", "gif", 160_000),
    ("photo.png", "png", 64_000),
    ("diagram.png", "png", 12_000),
    ("song.mp3", "mp3", 420_000),
    ("jingle.mp3", "mp3", 60_000),
    ("clip.mp4", "mp4", 1_500_000),
    ("teaser.mp4", "mp4", 240_000),
)
NON_MEDIA: Final = ("notes.txt", "text", 3_000)
EXPECTED_FAILURE: Final = "unrecognised"


def make_samples(directory: Path, seed: int) -> list[Path]:
    """Write the sample files (the media, then the text file) into `directory` (blocking)."""
    from mediacrush_async.testing import sample_media

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (name, kind, size) in enumerate((*SAMPLES, NON_MEDIA)):
        path = directory / name
        path.write_bytes(sample_media(kind, size=size, seed=seed + n))
        paths.append(path)
    return paths


def _check_media(source: Path, item: Item | None, outcome: UploadOutcome) -> tuple[list[str], int]:
    """Problems with one media sample's derived files, and how many files verified."""
    from mediacrush_async.testing import expected_derived_bytes

    if item is None or item.stage is not Stage.DONE:
        why = "not in the batch" if item is None else f"{item.stage.value} ({item.error_code})"
        return [f"{source.name}: {why}"], 0
    manifest = outcome.manifests.get(item.key)
    original = source.read_bytes()
    if manifest is None or manifest.hash != content_hash(original):
        return [f"{source.name}: no manifest for its content hash"], 0
    if not manifest.files:
        return [f"{source.name}: no derived files"], 0
    problems = []
    verified = 0
    for derived in manifest.files:
        if derived.path is None:
            problems.append(f"{source.name}: {derived.name} was not downloaded")
            continue
        expected = expected_derived_bytes(
            original, derived.name, original_ext=source.suffix.lstrip(".")
        )
        if Path(derived.path).read_bytes() != expected:
            problems.append(f"{source.name}: {derived.name} differs from the expected bytes")
        else:
            verified += 1
    return problems, verified


def verify(samples: list[Path], outcome: UploadOutcome) -> tuple[list[str], int]:
    """Every problem with the batch's outputs, and the number of derived files verified (blocking)."""
    items = {Path(item.key): item for item in outcome.items}
    problems: list[str] = []
    verified = 0
    for source in samples:
        item = items.get(source.resolve())
        if source.name == NON_MEDIA[0]:
            if item is None or item.stage is not Stage.FAILED:
                problems.append(f"{source.name}: expected to fail as {EXPECTED_FAILURE}")
            elif item.error_code != EXPECTED_FAILURE:
                problems.append(
                    f"{source.name}: failed as {item.error_code}, not {EXPECTED_FAILURE}"
                )
            continue
        found, count = _check_media(source, item, outcome)
        problems += found
        verified += count
    return problems, verified


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `mediacrush demo` on `sub`."""
    parser = sub.add_parser(
        "demo",
        help="upload sample media to the embedded emulator and verify every derived file",
        description="Run the MediaCrush job end to end on the embedded emulator (no network): "
        "upload sample media through exactly the `mediacrush upload --out DIR --delete` path, check "
        "every derived file byte for byte, and print a summary. A text file among the samples is "
        "expected to fail as unrecognised.",
        epilog="examples:\n  mediacrush demo\n  mediacrush demo --out demo/    "
        "# keep the samples, derived files and report.json in demo/",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.02,
        metavar="X",
        help="emulator speed: 0.02 runs 50 times faster than the real server (default)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="keep samples and outputs here"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the samples and the emulator")
    parser.set_defaults(handler=main_demo)


async def run_demo(args: argparse.Namespace, *, tty: bool | None = None) -> int:
    """Run the demo; returns the exit code."""
    from mediacrush_async.testing import EmulatorConfig, run_emulator

    if not args.time_scale > 0:
        VOICE.fail("--time-scale must be greater than 0")
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="mediacrush-demo-") as scratch:
        root = args.out if args.out is not None else Path(scratch)
        samples = await anyio.to_thread.run_sync(make_samples, root / "samples", args.seed)
        started = time.monotonic()
        config = EmulatorConfig(time_scale=args.time_scale, seed=args.seed)
        async with run_emulator(config) as running:
            print(f"emulator on {running.base_url} (time scale {args.time_scale:g})", flush=True)
            options = UploadOptions(
                files=tuple(str(p) for p in samples),
                base_url=running.base_url,
                out=root / "derived",
                delete=True,
                report=root / "report.json",
                time_scale=args.time_scale,
            )
            outcome = await run_upload(options, tty=tty)
            requests = len(running.emulator.log)
            left = running.emulator.stored_names()
        elapsed = time.monotonic() - started
        problems, verified = await anyio.to_thread.run_sync(verify, samples, outcome)
        for problem in problems:
            VOICE.fail(f"verify: {problem}")
        media_ok = len(SAMPLES) - len({p.split(":", 1)[0] for p in problems} - {NON_MEDIA[0]})
        print(
            f"demo: {media_ok}/{len(SAMPLES)} media files verified ({verified} derived files "
            f"byte-identical to the emulator's expected bytes); {NON_MEDIA[0]} "
            + (
                f"failed as {EXPECTED_FAILURE}, as expected"
                if not any(p.startswith(NON_MEDIA[0]) for p in problems)
                else "did not fail as expected"
            )
            + f"; {requests} requests, {len(left)} files left on the server, {elapsed:.1f} s",
            flush=True,
        )
        if args.out is not None:
            print(f"samples, derived files and report.json kept in {root}", flush=True)
    if outcome.code == EXIT_INTERRUPTED:
        return EXIT_INTERRUPTED
    return EXIT_OK if not problems and not left else EXIT_FAILED


def main_demo(args: argparse.Namespace) -> int:
    """`mediacrush demo`: the synchronous entry point the dispatcher calls."""
    configure_logging("mediacrush", ["mediacrush_async"], verbose=False)
    return run_async(VOICE, lambda: run_demo(args))
