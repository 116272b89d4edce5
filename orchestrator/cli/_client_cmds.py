"""`recuro filters|formats|ls|progress|rm|download`: one client call each."""

from __future__ import annotations

import argparse
import sys

from recuro_async import DestinationExistsError

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    add_connection_arguments,
    client_from_args,
    fail,
    run_async,
)
from ._shared import print_rows

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

    return run_async(main)


def _formats(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            infos = await client.list_output_formats()
        print_rows(("name", "long name"), [(i.name, i.long_name) for i in infos])
        return EXIT_OK

    return run_async(main)


def _ls(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            media = await client.list_media()
        print_rows(
            ("file_id", "restored file"), [(m.file_id, m.restored_file_url or "") for m in media]
        )
        return EXIT_OK

    return run_async(main)


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

    return run_async(main)


def _rm(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with client_from_args(args) as client:
            await client.delete_media(args.file_id, missing_ok=False)
        print(f"deleted {args.file_id}")
        return EXIT_OK

    return run_async(main)


def _download(args: argparse.Namespace) -> int:
    async def main() -> int:
        try:
            return await fetch()
        except DestinationExistsError as exc:
            fail(f"{exc.path} exists; pass --overwrite to replace it")
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

    return run_async(main)


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the one-call subcommands on `sub`."""
    for name, handler, help_text in (
        ("filters", _filters, "list the restoration filters the service offers"),
        ("formats", _formats, "list the output formats the service offers"),
        ("ls", _ls, "list the media on the account"),
    ):
        parser = sub.add_parser(name, help=help_text)
        add_connection_arguments(parser)
        parser.set_defaults(handler=handler)

    parser = sub.add_parser("progress", help="show the state and progress of one media file")
    parser.add_argument("file_id")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_progress)

    parser = sub.add_parser("rm", help="delete one media file and its restored files")
    parser.add_argument("file_id")
    add_connection_arguments(parser)
    parser.set_defaults(handler=_rm)

    parser = sub.add_parser("download", help="download a restored file (resumable)")
    parser.add_argument("url")
    parser.add_argument(
        "--out",
        default=".",
        help="directory or file path (default: .); a path ending with / is a directory, created "
        "if missing (--out restored/)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the file if it exists (default: refuse)"
    )
    add_connection_arguments(parser)
    parser.set_defaults(handler=_download)
