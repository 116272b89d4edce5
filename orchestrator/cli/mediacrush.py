"""The `mediacrush` command: upload, inspect and delete media on a MediaCrush server, or run its emulator.

`upload` runs the batch through the orchestrator (`MediaCrushAdapter`): each file is uploaded after a
content-hash pre-check, processing is awaited, and with `--out` every derived file (files and extras) is
downloaded there next to a `<input>.mediacrush.json` manifest and a journal, so rerunning the same command
resumes. A failed processing fails its item only; the others go on. Everything the user typed is checked
before any request: bad input exits 2 naming the file.

Output: rich progress bars and a summary table on a terminal; otherwise tab-separated lines on stdout,
the input first and its state second (`TabRenderer`: `uploaded\tHASH`, the server's states, then
`done\tHASH\tPATH...`, `failed\tCODE\tMESSAGE`, or `stopped\tCODE\tMESSAGE` when rerunning resumes it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import anyio.to_thread
import cattrs

from mediacrush_async import (
    Album,
    ConfigurationError,
    File,
    MediaCrushClient,
    MediaCrushError,
    NotFoundError,
    NotOwnerError,
    ServerError,
)
from mediacrush_async._constants import BASE_URL_ENV, DEFAULT_BASE_URL
from orchestrator._adapters.mediacrush import MediaCrushAdapter
from orchestrator._batch import open_batch
from orchestrator._demo import MEDIACRUSH_DEMO
from orchestrator._effects import CrashPoint
from orchestrator._stages import Stage
from orchestrator._staging import PushStager

from ._batchcmd import RESUME, add_batch_options, drive, exit_code, input_problems
from ._demo import add_demo_options, run_demo
from ._main import (
    EXIT_FAILED,
    EXIT_OK,
    Call,
    ExamplesFormatter,
    Service,
    UsageError,
    Voice,
    add_base_url,
    add_command,
    add_emulator_command,
    arg,
    dispatch,
    print_rows,
)
from ._render import Wording, make_renderer

__all__ = [
    "MEDIACRUSH",
    "build_parser",
    "check_inputs",
    "demo",
    "main",
    "run_upload",
    "wording",
]

MEDIACRUSH: Final = Service[MediaCrushClient](
    voice=Voice("mediacrush"),
    packages=("mediacrush_async",),
    connect=lambda args: MediaCrushClient(args.base_url),
    add_connection=lambda parser: add_base_url(
        parser, env=BASE_URL_ENV, default=DEFAULT_BASE_URL, what="server"
    ),
    usage=(ConfigurationError,),
    failed=(MediaCrushError,),
)
VOICE: Final = MEDIACRUSH.voice

# ---------------------------------------------------------------------- info, status, rm


def _file_rows(blob: File) -> list[tuple[str, str]]:
    rows = [
        ("hash", blob.hash),
        ("type", blob.type or ""),
        ("blob_type", blob.blob_type or ""),
        ("original", blob.original or ""),
    ]
    if blob.title:
        rows.append(("title", blob.title))
    if blob.description:
        rows.append(("description", blob.description))
    if blob.compression is not None:
        rows.append(("compression", f"{blob.compression:g}"))
    if blob.flags:
        rows.append(("flags", " ".join(f"{k}={str(v).lower()}" for k, v in blob.flags.items())))
    meta = blob.metadata
    if meta is not None:
        if meta.dimensions is not None:
            rows.append(("dimensions", f"{meta.dimensions.width}x{meta.dimensions.height}"))
        if meta.duration is not None:
            rows.append(("duration", f"{meta.duration:g} s"))
        for name, value in (("has_audio", meta.has_audio), ("has_video", meta.has_video)):
            if value is not None:
                rows.append((name, "yes" if value else "no"))
    rows.extend(("file", e.url or e.file) for e in blob.files)
    rows.extend(("extra", e.url or e.file) for e in blob.extras)
    return rows


def _album_rows(album: Album) -> list[tuple[str, str]]:
    rows = [("hash", album.hash), ("type", album.type), ("blob_type", album.blob_type or "")]
    if album.title:
        rows.append(("title", album.title))
    rows.extend(("item", f"{f.hash}\t{f.blob_type or ''}") for f in album.files)
    return rows


async def _info(client: MediaCrushClient, args: argparse.Namespace) -> int:
    try:
        blob = await client.info(args.hash)
    except NotFoundError:
        VOICE.fail(f"{args.hash}: no such file or album")
        return EXIT_FAILED
    except ServerError:
        # a file whose processing failed has no object any more: its status says why
        status = await client.status(args.hash)
        if not status.status.is_failure:
            raise
        VOICE.fail(f"{args.hash}: processing failed ({status.raw_status or status.status.value})")
        return EXIT_FAILED
    if args.json:
        print(json.dumps(cattrs.Converter().unstructure(blob), indent=2, sort_keys=True))
    else:
        rows = _album_rows(blob) if isinstance(blob, Album) else _file_rows(blob)
        print_rows(("field", "value"), rows)
    return EXIT_OK


async def _status(client: MediaCrushClient, args: argparse.Namespace) -> int:
    statuses = await client.status_many(args.hashes)
    rows = []
    for file_hash in dict.fromkeys(args.hashes):
        status = statuses.get(file_hash)
        if status is None:
            rows.append((file_hash, "not found", ""))
        else:
            blob_type = status.file.blob_type if status.file is not None else None
            rows.append((file_hash, status.raw_status or status.status.value, blob_type or ""))
    print_rows(("hash", "status", "blob_type"), rows)
    missing = [row[0] for row in rows if row[1] == "not found"]
    for file_hash in missing:
        VOICE.fail(f"{file_hash}: no such file")
    return EXIT_FAILED if missing else EXIT_OK


async def _rm(client: MediaCrushClient, args: argparse.Namespace) -> int:
    try:
        await client.delete(args.hash)
    except (NotOwnerError, NotFoundError) as exc:
        VOICE.fail(f"{args.hash}: {exc}")
        return EXIT_FAILED
    print(f"deleted {args.hash}")
    return EXIT_OK


_HASH: Final = arg("hash", metavar="HASH", help="the file's or album's 12-character hash")
CALLS: Final[tuple[Call[MediaCrushClient], ...]] = (
    Call(
        "info",
        "show a file or album object",
        "Show what the server knows of a file or album: type, derived files, flags, metadata (or, for "
        "an album, its files). An unknown hash exits 1.",
        "examples:\n  mediacrush info tVWMM_ziA3nm\n  mediacrush info tVWMM_ziA3nm --json",
        _info,
        args=(_HASH, arg("--json", action="store_true", help="print the object as JSON")),
    ),
    Call(
        "status",
        "show the processing status of files",
        "Show the processing status of each file (pending, processing, ready, done, or a failure such "
        "as unrecognised), one line per hash. Exits 1 if a hash is unknown.",
        "mediacrush status tVWMM_ziA3nm LxqXxVPAvqqB",
        _status,
        args=(arg("hashes", nargs="+", metavar="HASH", help="12-character file hashes"),),
    ),
    Call(
        "rm",
        "delete a file or album (only its uploader's address may)",
        "Delete a file or album from the server. Only the address that uploaded it may; deleting a "
        "file removes it for everyone who uploaded the same bytes.",
        "mediacrush rm tVWMM_ziA3nm",
        _rm,
        args=(_HASH,),
    ),
)


# ---------------------------------------------------------------------- upload


def check_inputs(files: Sequence[str], out: Path | None, report: Path | None = None) -> list[str]:
    """Every problem with the files, the output directory and the report path, one line each (blocking)."""
    return input_problems(
        files, MediaCrushAdapter.input_problem, out=out, report=report, none="no files to upload"
    )


def wording(*, downloads: bool) -> Wording:
    """MediaCrush's words for the shared renderers: files are checked, processed and downloaded."""
    # the bar's detail shows the server's own state (pending, processing, ready) after "uploaded"
    labels = {Stage.UPLOADING: "checking", Stage.UPLOADED: "uploaded"}
    labels[Stage.DOWNLOADING] = "downloading" if downloads else "listing files"
    return Wording(
        labels=labels,
        overall="all files",
        title="upload summary",
        tabs=True,
        tab_stages=frozenset({Stage.DOWNLOADING}) if downloads else frozenset(),
    )


async def run_upload(
    args: argparse.Namespace, *, tty: bool | None = None, watch_signals: bool = True
) -> int:
    """Run `mediacrush upload` with parsed `args` as one batch through the orchestrator; the exit code.

    Raises `UsageError` (every problem with the files, --out and --report; a journal of another kind of
    batch in --out, or one another run holds) and `ConfigurationError` (a bad base URL) before any request.
    """
    if problems := await anyio.to_thread.run_sync(check_inputs, args.files, args.out, args.report):
        raise UsageError(problems)
    words = wording(downloads=args.out is not None)
    renderer = make_renderer(tty=tty, wording=words)
    with tempfile.TemporaryDirectory(prefix="mediacrush-") as scratch:
        out = args.out if args.out is not None else Path(scratch)
        config = MediaCrushAdapter.batch_config(
            out,
            keep_remote=not args.delete,
            retry_failed=args.retry_failed,
            max_active=args.max_active,
        )
        async with MediaCrushClient(args.base_url) as client:
            adapter = MediaCrushAdapter(
                client,
                download=args.out is not None,
                on_upload_progress=lambda path, sent, total: renderer.upload_progress(
                    str(path), sent, total
                ),
            )
            batch = open_batch(
                adapter,
                out,
                stager=PushStager(),
                journal=args.journal,
                config=config.scaled(args.time_scale),
                crash_at=CrashPoint.from_environ(),  # a test hook (ORCHESTRATOR_CRASH_AT)
            )
            ended = await drive(
                batch,
                args.files,
                voice=VOICE,
                wording=words,
                renderer=renderer,
                tty=tty,
                report=args.report,
                watch_signals=watch_signals,
            )
    return exit_code(ended, VOICE)


# ---------------------------------------------------------------------- the demo's batch


async def _demo_batch(
    base_url: str, samples: Sequence[Path], root: Path, args: argparse.Namespace, tty: bool | None
) -> int:
    """`mediacrush upload --out root/derived --delete` on the demo's samples."""
    upload = build_parser().parse_args(
        [
            *("upload", *map(str, samples), "--out", str(root / "derived"), "--delete"),
            *("--report", str(root / "report.json"), "--base-url", base_url),
            *("--time-scale", str(args.time_scale)),
        ]
    )
    return await run_upload(upload, tty=tty)


# ---------------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mediacrush` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="mediacrush",
        description="Use a MediaCrush server, or run its emulator. Every command reads "
        "MEDIACRUSH_BASE_URL (default https://mediacru.sh), as MediaCrushClient() does.",
        epilog="examples:\n"
        "  mediacrush demo                           # the whole job on the embedded emulator\n"
        "  mediacrush upload cat.gif --out derived/  # upload, wait, download the derived files\n"
        "\nExit codes: 0 all done, 1 some failed, 2 usage or configuration error, 130 interrupted.",
        formatter_class=ExamplesFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    upload = add_command(
        sub,
        "upload",
        "upload files, wait for processing, download the derived files",
        "Upload each FILE (skipped when the server already has its bytes), wait until it is processed "
        "and, with --out, download its derived files (files and extras) there. Rerun the same command "
        "with the same --out to resume.",
        "examples:\n"
        "  mediacrush upload cat.gif song.mp3                # upload, wait, print the URLs\n"
        "  mediacrush upload clips/*.mp4 --out derived/      # and download every derived file",
    )
    upload.add_argument("files", nargs="+", metavar="FILE", help="local media files")
    add_batch_options(
        upload,
        service="mediacrush",
        noun="file",
        out_help="download the derived files here (with a manifest per file and a journal)",
        max_active=16,
        max_active_help="files worked on at once (default: 16)",
    )
    upload.add_argument(
        "--delete",
        action="store_true",
        help="delete each file from the server once its derived files are downloaded",
    )
    MEDIACRUSH.add_connection(upload)
    upload.set_defaults(handler=MEDIACRUSH.command(run_upload, on_interrupt=RESUME))
    MEDIACRUSH.add_calls(sub, CALLS)
    demo_cmd = add_command(
        sub,
        "demo",
        "upload sample media to the embedded emulator and verify every derived file",
        "Run the MediaCrush job end to end on the embedded emulator (no network): upload sample media "
        "through exactly the `mediacrush upload --out DIR --delete` path, check every derived file "
        "byte for byte, and print a summary. A text file among the samples is expected to fail as "
        "unrecognised.",
        "examples:\n  mediacrush demo\n  mediacrush demo --out demo/    "
        "# keep the samples, derived files and report.json in demo/",
    )
    add_demo_options(demo_cmd, kept="samples and derived files")
    demo_cmd.set_defaults(handler=MEDIACRUSH.command(demo))
    add_emulator_command(
        sub, "serve the MediaCrush emulator on loopback (prints MEDIACRUSH_BASE_URL first)"
    )
    return parser


def _emulator(argv: Sequence[str]) -> int:
    from mediacrush_async.testing._cli import main as emulator_main

    return emulator_main(argv)


async def demo(args: argparse.Namespace, *, tty: bool | None = None) -> int:
    """`mediacrush demo` with parsed `args`: `mediacrush upload` on sample media, checked byte for byte."""
    return await run_demo(MEDIACRUSH_DEMO, _demo_batch, MEDIACRUSH, args, tty=tty)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mediacrush` with `argv` (default: the process arguments); returns the exit code."""
    return dispatch(argv, build_parser, _emulator)


if __name__ == "__main__":
    sys.exit(main())
