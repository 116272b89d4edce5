"""`mediacrush upload|info|status|rm`: the MediaCrush subcommands (SPEC section 6).

`upload` runs the batch through the orchestrator (`Runner` + `MediaCrushAdapter`): each file is uploaded after
a content-hash pre-check, processing is awaited, and with `--out` every derived file (files and extras) is
downloaded there next to a `<input>.mediacrush.json` manifest and a journal, so rerunning the same command
resumes. A failed processing fails its item only; the others go on. Everything the user typed is checked
before any request: bad input exits 2 naming the file.

Output: rich progress bars and a summary table on a terminal; otherwise tab-separated lines on stdout, the
input first and its state second (`uploading` when its bytes go out, `uploaded\tHASH`, or
`already uploaded\tHASH` when the content-hash check found it on the server; `pending`, `processing`,
`ready`; `downloading` with --out; then `done\tHASH\tPATH...` or `failed\tCODE\tMESSAGE`). Exit codes:
0 all done, 1 some failed, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
import attrs

from mediacrush_async import (
    Album,
    ConfigurationError,
    File,
    MediaCrushAPIError,
    MediaCrushClient,
    MediaCrushError,
    NotFoundError,
    NotOwnerError,
    ServerError,
    Status,
)
from mediacrush_async._constants import BASE_URL_ENV, DEFAULT_BASE_URL
from orchestrator._adapters.mediacrush import Manifest, MediaCrushAdapter, read_manifest
from orchestrator._batch import journal_path, open_batch
from orchestrator._config import RunnerConfig
from orchestrator._effects import CrashPoint
from orchestrator._events import ItemDone
from orchestrator._journal import Journal, JournalError, JournalMismatchError
from orchestrator._stages import Item, Stage
from orchestrator._staging import PushStager

from ._main import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ExamplesFormatter,
    UsageError,
    Voice,
    configure_logging,
    exit_code,
    local_file_problem,
    out_dir_problem,
    positive_float,
    positive_int,
    print_rows,
    run_async,
    run_batch,
    scaled_config,
)
from ._render import Wording, make_renderer, print_summary

__all__ = [
    "VOICE",
    "UploadOptions",
    "UploadOutcome",
    "add_commands",
    "check_inputs",
    "run_upload",
    "wording",
]

VOICE: Final = Voice("mediacrush")
_API_REASONS: Final = {
    401: "refused: only the address that uploaded it may do this",
    404: "no such file or album",
    413: "too large",
    415: "not a file (an album?)",
    420: "the upload budget of this address is spent; try again later",
}


def describe(exc: BaseException) -> str:
    """A readable one-line reason for a client error."""
    if isinstance(exc, MediaCrushAPIError):
        reason = _API_REASONS.get(exc.status_code)
        return f"{reason} ({exc})" if reason else str(exc)
    return str(exc) or type(exc).__name__


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--base-url (default: $MEDIACRUSH_BASE_URL, else the public server)."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
        metavar="URL",
        help=f"server base URL (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})",
    )


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a subcommand: configuration and input errors exit 2, API failures 1, Ctrl-C 130."""
    return run_async(
        VOICE, main, usage=(ConfigurationError,), failed=(MediaCrushError,), describe=describe
    )


# ---------------------------------------------------------------------- info, status, rm


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


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
                rows.append((name, _yes_no(value)))
    rows.extend(("file", e.url or e.file) for e in blob.files)
    rows.extend(("extra", e.url or e.file) for e in blob.extras)
    return rows


def _album_rows(album: Album) -> list[tuple[str, str]]:
    rows = [("hash", album.hash), ("type", album.type), ("blob_type", album.blob_type or "")]
    if album.title:
        rows.append(("title", album.title))
    rows.extend(("item", f"{f.hash}\t{f.blob_type or ''}") for f in album.files)
    return rows


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list | set | frozenset):
        return list(value)
    return str(value)


def _info(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with MediaCrushClient(args.base_url) as client:
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
                VOICE.fail(
                    f"{args.hash}: processing failed ({status.raw_status or status.status.value})"
                )
                return EXIT_FAILED
        if args.json:
            print(json.dumps(attrs.asdict(blob), indent=2, sort_keys=True, default=_jsonable))
        else:
            rows = _album_rows(blob) if isinstance(blob, Album) else _file_rows(blob)
            print_rows(("field", "value"), rows)
        return EXIT_OK

    return _run(main)


def _status_row(file_hash: str, status: Status | None) -> tuple[str, str, str]:
    if status is None:
        return (file_hash, "not found", "")
    blob_type = status.file.blob_type if status.file is not None else None
    return (file_hash, status.raw_status or status.status.value, blob_type or "")


def _status(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with MediaCrushClient(args.base_url) as client:
            statuses = await client.status_many(args.hashes)
        rows = [_status_row(h, statuses.get(h)) for h in dict.fromkeys(args.hashes)]
        print_rows(("hash", "status", "blob_type"), rows)
        missing = [row[0] for row in rows if row[1] == "not found"]
        for file_hash in missing:
            VOICE.fail(f"{file_hash}: no such file")
        return EXIT_FAILED if missing else EXIT_OK

    return _run(main)


def _rm(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with MediaCrushClient(args.base_url) as client:
            try:
                await client.delete(args.hash)
            except (NotOwnerError, NotFoundError) as exc:
                VOICE.fail(f"{args.hash}: {describe(exc)}")
                return EXIT_FAILED
        print(f"deleted {args.hash}")
        return EXIT_OK

    return _run(main)


# ---------------------------------------------------------------------- upload: input and options


@attrs.frozen
class UploadOptions:
    """What `mediacrush upload` was asked to do.

    Attributes:
        files: the local files, as typed.
        base_url: the server.
        out: where derived files, manifests and the journal go; None uploads and waits only.
        delete: delete each uploaded file from the server once its files are downloaded.
        retry_failed: try the items that failed in an earlier run with the same --out again.
        report: write the JSON report here.
        max_active: files being worked on at once.
        time_scale: scales the poll intervals and backoffs (for an emulator with a time scale).
    """

    files: tuple[str, ...]
    base_url: str = DEFAULT_BASE_URL
    out: Path | None = None
    delete: bool = False
    retry_failed: bool = False
    report: Path | None = None
    max_active: int = 16
    time_scale: float = 1.0


@attrs.frozen
class UploadOutcome:
    """How the batch ended: the exit code and the items (in batch order)."""

    code: int
    items: tuple[Item, ...]
    manifests: Mapping[str, Manifest]


def check_inputs(files: Sequence[str], out: Path | None, report: Path | None = None) -> list[str]:
    """Every problem with the files, the output directory and the report path, one line each (blocking)."""
    problems = [] if files else ["no files to upload"]
    if report is not None and not report.parent.is_dir():
        problems.append(f"--report {str(report)!r}: no directory {str(report.parent)!r}")
    problems += [p for p in map(local_file_problem, files) if p is not None]
    out_problem = out_dir_problem(out) if out is not None else None
    return problems if out_problem is None else [*problems, out_problem]


# ---------------------------------------------------------------------- upload: the batch


def wording(*, downloads: bool) -> Wording:
    """MediaCrush's words for the shared renderers: files are checked, processed and downloaded."""
    labels = dict(Wording().labels)
    # the bar's detail shows the server's own state (pending, processing, ready) after "uploaded"
    labels |= {Stage.UPLOADING: "checking", Stage.UPLOADED: "uploaded"}
    labels[Stage.DOWNLOADING] = "downloading" if downloads else "listing files"
    return Wording(
        labels=labels,
        overall="all files",
        title="upload summary",
        rate=None,  # status calls are not limited: no budget bound on the ETA
        tabs=True,
        tab_stages=frozenset({Stage.DOWNLOADING}) if downloads else frozenset(),
    )


def _config(options: UploadOptions, out_dir: Path) -> RunnerConfig:
    """MediaCrush's numbers (seconds at time scale 1): status is cheap, uploads are idempotent."""
    return scaled_config(
        out_dir,
        options.time_scale,
        poll=(0.5, 10.0),
        settle=0.0,  # an unanswered upload is simply made again; nothing to wait for
        keep_remote=not options.delete,
        retry_failed=options.retry_failed,
        max_active=options.max_active,
        max_uploads=4,  # uploads are idempotent (content-hash ids): no need to send one at a time
        max_downloads=4,
    )


async def run_upload(
    options: UploadOptions, *, tty: bool | None = None, watch_signals: bool = True
) -> UploadOutcome:
    """Upload `options.files` as one batch through the orchestrator, showing progress; the outcome.

    Raises `UsageError` (a journal of another kind of batch in --out, or one another run holds) and
    `ConfigurationError` (a bad base URL) before any request.
    """
    started = time.monotonic()
    words = wording(downloads=options.out is not None)
    renderer = make_renderer(tty=tty, wording=words)
    manifests: dict[str, Manifest] = {}

    async def describe(event: ItemDone) -> list[str]:
        manifest = await anyio.to_thread.run_sync(read_manifest, event.output_path)
        manifests[event.key] = manifest
        return [f.path or f.url for f in manifest.files]

    with tempfile.TemporaryDirectory(prefix="mediacrush-") as scratch:
        out_dir = options.out if options.out is not None else Path(scratch)
        async with MediaCrushClient(options.base_url) as client:
            adapter = MediaCrushAdapter(
                client,
                download=options.out is not None,
                on_upload_progress=lambda path, sent, total: renderer.upload_progress(
                    str(path), sent, total
                ),
            )
            try:
                await Journal.check(journal_path(adapter, out_dir), adapter.job_spec())
            except JournalMismatchError as exc:
                raise UsageError([f"--out {str(out_dir)!r}: {exc}"]) from exc
            batch = open_batch(
                adapter,
                out_dir,
                stager=PushStager(),
                config=_config(options, out_dir),
                crash_at=CrashPoint.from_environ(),  # a test hook (ORCHESTRATOR_CRASH_AT)
            )
            try:
                ended = await run_batch(
                    batch,
                    options.files,
                    renderer=renderer,
                    voice=VOICE,
                    describe=describe,
                    report=options.report,
                    watch_signals=watch_signals,
                )
            except JournalError as exc:  # another run holds the journal
                raise UsageError([str(exc)]) from exc
    if tty if tty is not None else sys.stdout.isatty():
        print_summary(ended.report, tty=True, title=words.title)
    if (last := ended.last) is not None:
        VOICE.say(
            f"{last.done} done, {last.failed} failed"
            + (f", {last.parked} parked" if last.parked else "")
            + (f", {last.pending} pending" if last.pending else "")
            + f" in {time.monotonic() - started:.1f} s"
        )
    return UploadOutcome(exit_code(ended, VOICE), ended.items, manifests)


def _upload(args: argparse.Namespace) -> int:
    configure_logging("mediacrush", ["mediacrush_async"], verbose=args.verbose)
    problems = check_inputs(args.files, args.out, args.report)
    if problems:
        for problem in problems:
            VOICE.fail(problem)
        return EXIT_USAGE
    options = UploadOptions(
        files=tuple(args.files),
        base_url=args.base_url,
        out=args.out,
        delete=args.delete,
        retry_failed=args.retry_failed,
        report=args.report,
        max_active=args.max_active,
        time_scale=args.time_scale,
    )

    async def main() -> int:
        outcome = await run_upload(options)
        return outcome.code

    return _run(main)


# ---------------------------------------------------------------------- registering


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register upload, info, status and rm on `sub`."""
    parser = sub.add_parser(
        "upload",
        help="upload files, wait for processing, download the derived files",
        description="Upload each FILE (skipped when the server already has its bytes), wait until "
        "it is processed and, with --out, download its derived files (files and extras) there. "
        "Rerun the same command with the same --out to resume.",
        epilog="examples:\n"
        "  mediacrush upload cat.gif song.mp3                # upload, wait, print the URLs\n"
        "  mediacrush upload clips/*.mp4 --out derived/      # and download every derived file",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="local media files")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="download the derived files here (with a manifest per file and a journal)",
    )
    parser.add_argument(
        "--delete",
        action="store_true",
        help="delete each file from the server once its derived files are downloaded",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="try the files that failed before again"
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="write a JSON report to FILE")
    parser.add_argument(
        "--max-active",
        type=positive_int,
        default=16,
        metavar="N",
        help="files worked on at once (default: 16)",
    )
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="scale poll intervals (for an emulator run with --time-scale)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine decides")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_upload)

    parser = sub.add_parser(
        "info",
        help="show a file or album object",
        description="Show what the server knows of a file or album: type, derived files, flags, "
        "metadata (or, for an album, its files). An unknown hash exits 1.",
        epilog="examples:\n  mediacrush info tVWMM_ziA3nm\n  mediacrush info tVWMM_ziA3nm --json",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("hash", metavar="HASH", help="the file's or album's 12-character hash")
    parser.add_argument("--json", action="store_true", help="print the object as JSON")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_info)

    parser = sub.add_parser(
        "status",
        help="show the processing status of files",
        description="Show the processing status of each file (pending, processing, ready, done, or a "
        "failure such as unrecognised), one line per hash. Exits 1 if a hash is unknown.",
        epilog="example:\n  mediacrush status tVWMM_ziA3nm LxqXxVPAvqqB",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("hashes", nargs="+", metavar="HASH", help="12-character file hashes")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_status)

    parser = sub.add_parser(
        "rm",
        help="delete a file or album (only its uploader's address may)",
        description="Delete a file or album from the server. Only the address that uploaded it may; "
        "deleting a file removes it for everyone who uploaded the same bytes.",
        epilog="example:\n  mediacrush rm tVWMM_ziA3nm",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("hash", metavar="HASH", help="the file's or album's 12-character hash")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_rm)
