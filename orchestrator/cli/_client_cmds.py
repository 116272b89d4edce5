"""`recuro filters|formats|ls|progress|rm|download`: one client call each."""

from __future__ import annotations

import argparse
import sys
from typing import Final

from recuro_async import DestinationExistsError

from ._common import VOICE, add_connection_arguments, client_from_args, run_client_call
from ._main import EXIT_FAILED, EXIT_OK, ExamplesFormatter, print_rows

__all__ = ["add_client_commands"]


def _filters(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            infos = await client.list_filters()
        print_rows(
            ("name", "description", "example"),
            [(i.name, i.description, i.example_url or "") for i in infos],
        )
        return EXIT_OK

    return run_client_call(main)


def _formats(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            infos = await client.list_output_formats()
        print_rows(("name", "long name"), [(i.name, i.long_name) for i in infos])
        return EXIT_OK

    return run_client_call(main)


def _ls(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            media = await client.list_media()
        print_rows(
            ("file_id", "restored file"), [(m.file_id, m.restored_file_url or "") for m in media]
        )
        return EXIT_OK

    return run_client_call(main)


def _progress(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            progress = await client.get_progress(args.file_id)
        row = (
            progress.raw_state or progress.state.value,
            f"{progress.progress:g}",
            progress.restored_file_url or "",
        )
        print_rows(("state", "progress", "restored file"), [row])
        return EXIT_OK

    return run_client_call(main)


def _rm(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            await client.delete_media(args.file_id, missing_ok=False)
        print(f"deleted {args.file_id}")
        return EXIT_OK

    return run_client_call(main)


def _download(args: argparse.Namespace) -> int:
    async def main() -> int:
        try:
            return await fetch()
        except DestinationExistsError as exc:
            VOICE.fail(f"{exc.path} exists; pass --overwrite to replace it")
            return EXIT_FAILED

    async def fetch() -> int:
        async with client_from_args(args) as client:
            if sys.stderr.isatty():
                from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

                with Progress(
                    *Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()
                ) as bar:
                    task = bar.add_task("download", total=None)
                    path = await client.download(
                        args.url,
                        args.out,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                        overwrite=args.overwrite,
                    )
            else:
                path = await client.download(args.url, args.out, overwrite=args.overwrite)
        print(path)
        return EXIT_OK

    return run_client_call(main)


_COMMANDS: Final = {
    "filters": (
        "list the restoration filters the service offers",
        (
            "List the restoration filters the service offers: name, description and an example URL. The "
            "names are what `recuro restore --filter` accepts."
        ),
        "recuro filters",
    ),
    "formats": (
        "list the output formats the service offers",
        (
            "List the output formats the service offers: name and long name. The names are what "
            "`recuro restore --format` accepts."
        ),
        "recuro formats",
    ),
    "ls": (
        "list the media on the account",
        (
            "List every media file on the account: its file_id and, once a job finished, the URL of its "
            "restored file."
        ),
        "recuro ls",
    ),
    "progress": (
        "show the state and progress of one media file",
        (
            "Show the state of one media file (MediaUploading ... JobCompleted), its progress within that "
            "state (0-100) and, once restored, the URL of the restored file."
        ),
        "recuro progress ids-345643.mov",
    ),
    "rm": (
        "delete one media file and its restored files",
        (
            "Delete one media file and everything derived from it from the account (DeleteMedia). An "
            "unknown file_id is an error (exit 1)."
        ),
        "recuro rm ids-345643.mov",
    ),
    "download": (
        "download a restored file (resumable)",
        (
            "Download a restored file to --out, resuming a partial download and verifying its size; the "
            "file name comes from the server. Prints the path of the finished file."
        ),
        "recuro download 'https://www.recuromedia.com/download.php?guid=1c8d4737-a0d4-42fb-8276-271426eb9128' --out restored/",
    ),
}


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str
) -> argparse.ArgumentParser:
    one_line, description, example = _COMMANDS[name]
    return sub.add_parser(
        name,
        help=one_line,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=ExamplesFormatter,
    )


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the one-call subcommands on `sub`."""
    for name, handler in (("filters", _filters), ("formats", _formats), ("ls", _ls)):
        parser = _add(sub, name)
        add_connection_arguments(parser)
        parser.set_defaults(handler=handler)

    parser = _add(sub, "progress")
    parser.add_argument("file_id", help="the media's file_id (as `recuro ls` shows it)")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_progress)

    parser = _add(sub, "rm")
    parser.add_argument("file_id", help="the media's file_id (as `recuro ls` shows it)")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_rm)

    parser = _add(sub, "download")
    parser.add_argument(
        "url", help="the restored file's URL (as `recuro progress` or `recuro ls` shows it)"
    )
    parser.add_argument(
        "--out",
        default=".",
        metavar="PATH",
        help="a directory, or the file to write (default: the current directory); a path ending "
        "with / is a directory, created if missing (--out restored/)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the file if it exists (default: refuse)"
    )
    add_connection_arguments(parser)
    parser.set_defaults(handler=_download)
