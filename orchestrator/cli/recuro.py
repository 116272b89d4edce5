"""The `recuro` command: one subcommand per job (see SPEC section 6, or `recuro --help`).

`restore` (the batch) lives in `_restore.py`; here are the one-call subcommands, the demo's Recuro part and
the parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from orchestrator._demo import RECURO_DEMO
from recuro_async import DestinationExistsError, RecuroClient

from ._common import RECURO
from ._demo import add_demo_options, run_demo
from ._main import (
    EXIT_FAILED,
    EXIT_OK,
    Call,
    ExamplesFormatter,
    add_command,
    add_emulator_command,
    arg,
    dispatch,
    positive_int,
    rows_of,
    saying,
)
from ._restore import add_restore_arguments, main_restore, run_restore

__all__ = ["build_parser", "demo", "main"]

# ---------------------------------------------------------------------- one call each


async def _download(client: RecuroClient, args: argparse.Namespace) -> int:
    try:
        if sys.stderr.isatty():
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns) as bar:
                task = bar.add_task("download", total=None)
                path = await client.download(
                    args.url,
                    args.out,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    overwrite=args.overwrite,
                )
        else:
            path = await client.download(args.url, args.out, overwrite=args.overwrite)
    except DestinationExistsError as exc:
        RECURO.voice.fail(f"{exc.path} exists; pass --overwrite to replace it")
        return EXIT_FAILED
    print(path)
    return EXIT_OK


_FILE_ID: Final = arg("file_id", help="the media's file_id (as `recuro ls` shows it)")
CALLS: Final[tuple[Call[RecuroClient], ...]] = (
    Call(
        "filters",
        "list the restoration filters the service offers",
        "List the restoration filters the service offers: name, description and an example URL. The "
        "names are what `recuro restore --filter` accepts.",
        "recuro filters",
        lambda c, _: rows_of(
            c.list_filters(), lambda i: (i.name, i.description, i.example_url or "")
        ),
        ("name", "description", "example"),
    ),
    Call(
        "formats",
        "list the output formats the service offers",
        "List the output formats the service offers: name and long name. The names are what "
        "`recuro restore --format` accepts.",
        "recuro formats",
        lambda c, _: rows_of(c.list_output_formats(), lambda i: (i.name, i.long_name)),
        ("name", "long name"),
    ),
    Call(
        "ls",
        "list the media on the account",
        "List every media file on the account: its file_id and, once a job finished, the URL of its "
        "restored file.",
        "recuro ls",
        lambda c, _: rows_of(c.list_media(), lambda m: (m.file_id, m.restored_file_url or "")),
        ("file_id", "restored file"),
    ),
    Call(
        "progress",
        "show the state and progress of one media file",
        "Show the state of one media file (MediaUploading ... JobCompleted), its progress within that "
        "state (0-100) and, once restored, the URL of the restored file.",
        "recuro progress ids-345643.mov",
        lambda c, a: rows_of(
            c.get_progress(a.file_id),
            lambda p: (p.raw_state or p.state.value, f"{p.progress:g}", p.restored_file_url or ""),
        ),
        ("state", "progress", "restored file"),
        (_FILE_ID,),
    ),
    Call(
        "rm",
        "delete one media file and its restored files",
        "Delete one media file and everything derived from it from the account (DeleteMedia). An "
        "unknown file_id is an error (exit 1).",
        "recuro rm ids-345643.mov",
        lambda c, a: saying(c.delete_media(a.file_id, missing_ok=False), f"deleted {a.file_id}"),
        args=(_FILE_ID,),
    ),
    Call(
        "download",
        "download a restored file (resumable)",
        "Download a restored file to --out, resuming a partial download and verifying its size; the "
        "file name comes from the server. Prints the path of the finished file.",
        "recuro download 'https://www.recuromedia.com/download.php?guid=1c8d4737-a0d4-42fb-8276-"
        "271426eb9128' --out restored/",
        _download,
        args=(
            arg(
                "url", help="the restored file's URL (as `recuro progress` or `recuro ls` shows it)"
            ),
            arg(
                "--out",
                default=".",
                metavar="PATH",
                help="a directory, or the file to write (default: the current directory); a path "
                "ending with / is a directory, created if missing (--out restored/)",
            ),
            arg(
                "--overwrite",
                action="store_true",
                help="replace the file if it exists (default: refuse)",
            ),
        ),
    ),
)


# ---------------------------------------------------------------------- the demo's batch


async def _demo_batch(
    base_url: str, samples: Sequence[Path], root: Path, args: argparse.Namespace, tty: bool | None
) -> int:
    """`recuro restore` on the demo's samples, into `root/restored`."""
    restore = build_parser().parse_args(
        [
            *("restore", *map(str, samples)),
            *("--format", RECURO_DEMO.output_format, "--scale", RECURO_DEMO.output_scaling),
            *[a for name in RECURO_DEMO.filters for a in ("--filter", name)],
            *("--out", str(root / "restored"), "--report", str(root / "report.json")),
            *("--base-url", base_url, "--time-scale", str(args.time_scale)),
        ]
    )
    return await run_restore(restore, credentials=RECURO_DEMO.credentials, tty=tty)


async def demo(args: argparse.Namespace, *, tty: bool | None = None) -> int:
    """`recuro demo` with parsed `args`: `recuro restore` on sample reels, checked byte for byte."""
    return await run_demo(RECURO_DEMO, _demo_batch, RECURO, args, tty=tty)


# ---------------------------------------------------------------------- the parser

_RESTORE_DESCRIPTION: Final = (
    "Restore every INPUT (a local media file or an http(s) URL) with one job each: upload, wait for "
    "analysis, start the job, wait, download the restored file into DIR (resumable, verified) and delete "
    "the remote media. All calls share one limiter (200 requests per sliding minute). Everything typed is "
    "checked before any request. A journal in DIR records every step: rerun the same command after a "
    "crash or Ctrl-C and it resumes; items that failed are tried again only with --retry-failed. Local "
    "files are served to the service by a built-in file server (see --stage-url)."
)
_RESTORE_EPILOG: Final = """\
examples:
  recuro restore reels/*.mov --format Mp4H264 --filter Noise --filter ColorBalance --scale 1080 --out restored/
  recuro restore --from-file urls.txt --format MovProRes422Hq --out restored/ --report report.json
  recuro restore reels/*.mov --format Mp4H264 --out restored/ \\
      --stage-url https://files.example.com/ --stage-bind 127.0.0.1:8600   # service not on loopback

Exit codes: 0 all done, 1 some items failed, 2 usage or configuration error, 130 interrupted
(rerun the same command to resume)."""

_EPILOG = """\
examples:
  recuro demo                          # the whole job on the embedded emulator, offline
  recuro restore reels/*.mov --format Mp4H264 --filter Noise --out restored/
  recuro ls                            # media on the account

Every command reads RECURO_BASE_URL, RECURO_API_KEY and RECURO_API_SECRET (or --base-url, --api-key,
--api-secret-file). Exit codes: 0 all done, 1 some items failed, 2 usage or configuration error,
130 interrupted. `recuro COMMAND --help` tells more."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `recuro` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="recuro",
        description="Restore media with the Recuro Media API, or run its emulator.",
        epilog=_EPILOG,
        formatter_class=ExamplesFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    restore = add_command(
        sub,
        "restore",
        "restore a batch of files or URLs (resumable, inside the rate limit)",
        _RESTORE_DESCRIPTION,
        _RESTORE_EPILOG,
    )
    add_restore_arguments(restore)
    restore.set_defaults(handler=main_restore)
    demo_cmd = add_command(
        sub,
        "demo",
        "the main job on the embedded emulator: a batch restore, verified byte for byte",
        "Start the Recuro emulator on loopback, write sample media files, restore them as one batch "
        "through exactly the `recuro restore` path (staging, journal, downloads, progress), check every "
        "output byte for byte and print a summary. No credentials, no network.",
        "examples:\n  recuro demo\n  recuro demo --count 100 --out demo/    "
        "# keep the samples, outputs and report.json in demo/",
    )
    demo_cmd.add_argument(
        "--count", type=positive_int, default=36, help="sample files to restore (default: 36)"
    )
    add_demo_options(demo_cmd, kept="samples and outputs")
    demo_cmd.set_defaults(handler=RECURO.command(demo))
    RECURO.add_calls(sub, CALLS)
    add_emulator_command(
        sub, "serve the Recuro emulator on loopback (prints RECURO_BASE_URL/KEY/SECRET first)"
    )
    return parser


def _emulator(argv: Sequence[str]) -> int:
    from recuro_async.testing._cli import main as emulator_main

    return emulator_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `recuro` with `argv` (default: the process arguments); returns the exit code."""
    return dispatch(argv, build_parser, _emulator)


if __name__ == "__main__":
    sys.exit(main())
