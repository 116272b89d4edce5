"""`recuro restore INPUT...`: a batch through the orchestrator, with progress, a journal and a report.

Everything the user typed is checked before any remote side effect: every local input exists, is a readable
file of a supported container, the job settings are valid (the client's own validation), the output
directory is writable, the journal (if any) belongs to this job, local inputs have a reachable staging URL,
and the credentials are configured. All problems are reported at once, with exit code 2 (`_main`'s codes).
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread
import attrs

from orchestrator._adapters.recuro import DEFAULT_MAX_ACTIVE, RATE_LIMIT, RecuroAdapter
from orchestrator._batch import LOCAL_NOTIFY, journal_path, open_batch
from orchestrator._budget import JournaledWindow
from orchestrator._config import RunnerConfig
from orchestrator._effects import CrashPoint
from orchestrator._stages import Stage
from orchestrator._staging import LocalFileServer, is_url
from recuro_async import ConfigurationError, DownloadOptions, RecuroClient
from recuro_async._client import REDIS_URL_ENV
from recuro_async._validate import is_loopback_host

from ._batchcmd import RESUME, add_batch_options, drive, exit_code, input_problems
from ._common import RECURO, add_connection_arguments, credentials_from_args
from ._main import EXIT_USAGE, UsageError, positive_float, positive_int
from ._render import Wording

__all__ = [
    "DEFAULT_MAX_ACTIVE",
    "WORDING",
    "add_restore_arguments",
    "main_restore",
    "run_restore",
]

VOICE: Final = RECURO.voice
WORDING: Final = Wording(
    labels={
        Stage.UPLOADED: "analysing",
        Stage.STARTING: "starting job",
        Stage.RUNNING: "restoring",
        Stage.DOWNLOADED: "verified",
    },
    title="restore summary",
)
"""Recuro's words for the shared renderers: media is analysed, a job restores it, its output verified."""

# ---------------------------------------------------------------------- arguments


def _bind(text: str) -> tuple[str, int]:
    """An argparse type: `HOST:PORT` (an empty host is loopback)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return (host.strip("[]") or "127.0.0.1", int(port))


def _notify(text: str) -> str:
    """An argparse type: an http(s) URL or `LOCAL_NOTIFY`."""
    if text != LOCAL_NOTIFY and not is_url(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected an http(s) URL or '{LOCAL_NOTIFY}'")
    return text


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `recuro restore` (SPEC 6), connection options included."""
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="local media files or http(s) URLs"
    )
    parser.add_argument(
        "--from-file", type=Path, metavar="LIST", help="read more inputs from LIST, one per line"
    )
    parser.add_argument("--format", required=True, help="output format (see `recuro formats`)")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        dest="filters",
        metavar="NAME",
        help="a restoration filter; repeat for several (see `recuro filters`)",
    )
    parser.add_argument("--scale", choices=["1080", "2160"], default=None, help="output resolution")
    add_batch_options(
        parser,
        service="recuro",
        noun="item",
        out_help=None,
        max_active=DEFAULT_MAX_ACTIVE,
        max_active_help=f"media on the account at once (default: {DEFAULT_MAX_ACTIVE}, the rate limit's "
        "requests per window: by Little's law the rate budget, about 3.2 calls per item, keeps that many "
        "items busy while each spends up to about three rate windows on the service; lower it to cap the "
        "media held on the account, raise it for jobs that take longer)",
    )
    parser.add_argument(
        "--keep-remote", action="store_true", help="do not delete media from the account"
    )
    parser.add_argument(
        "--notify-url",
        type=_notify,
        metavar="URL",
        help="public base URL of the local server for callbacks (webhook mode); "
        f"'{LOCAL_NOTIFY}' uses the server's own address (loopback services)",
    )
    parser.add_argument(
        "--stage-url",
        metavar="URL",
        help="public base URL where the local file server is reachable "
        "(default: its own address when the API is on loopback)",
    )
    parser.add_argument(
        "--stage-bind",
        type=_bind,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="where the local file server listens (default: 127.0.0.1 on a free port)",
    )
    parser.add_argument(
        "--stage-timeout",
        type=positive_float,
        default=86_400.0,
        metavar="SECONDS",
        help="fail an item stuck that long in analysis or in its job (default: a day)",
    )
    parser.add_argument(
        "--rate-limit",
        type=positive_int,
        default=RATE_LIMIT,
        metavar="N",
        help=f"API requests the account allows per 60 s window (default: {RATE_LIMIT}, "
        "the documented limit); the batch never sends more in any window, across reruns",
    )
    parser.add_argument(
        "--segments",
        type=positive_int,
        default=1,
        metavar="N",
        help="download each restored file in up to N concurrent ranges (default: 1); helps when the "
        "server caps each connection's bandwidth. Example: --segments 8",
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        metavar="URL",
        help="share the account's rate budget with other processes through Redis at URL "
        f"(redis://, unix://; default: ${REDIS_URL_ENV}, else this process alone)",
    )
    add_connection_arguments(parser)


# ---------------------------------------------------------------------- setup (no remote calls)


@attrs.define
class _Setup:
    inputs: list[str]
    client: RecuroClient
    adapter: RecuroAdapter
    journal: Path
    config: RunnerConfig
    stager: LocalFileServer | None
    window: JournaledWindow


def _check_files(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Inputs and the problems with them and with the output directory (runs in a thread)."""
    problems: list[str] = []
    inputs = list(args.inputs)
    if args.from_file is not None:
        try:
            lines = args.from_file.read_text(encoding="utf-8").splitlines()
            inputs += [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"--from-file {args.from_file}: cannot read it ({exc})")
    none = None if problems else "no inputs: name media files or URLs, or use --from-file"
    problems += input_problems(
        inputs, RecuroAdapter.input_problem, out=args.out, report=None, none=none
    )
    return inputs, problems


def _stage_problems(args: argparse.Namespace, local: bool) -> list[str]:
    """Problems with --stage-url and --stage-bind."""
    problems = []
    if args.stage_url and args.stage_bind[1] == 0:
        problems.append("--stage-url needs --stage-bind HOST:PORT, a fixed port it forwards to")
    api_host = urllib.parse.urlsplit(args.base_url).hostname or ""
    if local and not args.stage_url and not is_loopback_host(api_host):
        problems.append(
            "local inputs need --stage-url: the public URL at which the service can fetch them"
        )
    return problems


async def _setup(args: argparse.Namespace, credentials: tuple[str, str] | None) -> _Setup:
    inputs, problems = await anyio.to_thread.run_sync(_check_files, args)
    local = any(not is_url(i) for i in inputs)
    problems += _stage_problems(args, local)
    client: RecuroClient | None = None
    try:
        client, window = RecuroAdapter.batch_client(
            *(credentials or credentials_from_args(args)),
            base_url=args.base_url,
            rate_limit=args.rate_limit,
            period=60.0 * args.time_scale,
            redis_url=args.redis_url,
            download_options=DownloadOptions(segments=args.segments),
        )
        adapter = RecuroAdapter(
            client, output_format=args.format, filters=args.filters, output_scaling=args.scale
        )
    except (ConfigurationError, ValueError) as exc:
        problems.append(str(exc))
    if problems:
        if client is not None:
            await client.aclose()
        raise UsageError(problems)
    assert client is not None  # noqa: S101 - no problems: the client and adapter were made
    config = RecuroAdapter.batch_config(
        args.out.resolve(),
        webhook=args.notify_url is not None,
        keep_remote=args.keep_remote,
        retry_failed=args.retry_failed,
        max_active=args.max_active,
        phase_timeout=args.stage_timeout,
    )
    stager = None
    if local or args.notify_url is not None:
        stager = LocalFileServer(bind=args.stage_bind, public_url=args.stage_url)
    return _Setup(
        inputs=inputs,
        client=client,
        adapter=adapter,
        journal=journal_path(adapter, args.out, args.journal),
        config=config.scaled(args.time_scale),
        stager=stager,
        window=window,
    )


# ---------------------------------------------------------------------- the batch


async def run_restore(
    args: argparse.Namespace,
    *,
    credentials: tuple[str, str] | None = None,
    tty: bool | None = None,
) -> int:
    """Run `recuro restore` with parsed `args`; returns the exit code."""
    try:
        setup = await _setup(args, credentials)
        async with setup.client:
            batch = open_batch(
                setup.adapter,
                setup.config.out_dir,
                stager=setup.stager,
                notify=args.notify_url,
                journal=setup.journal,
                config=setup.config,
                window=setup.window,
                crash_at=CrashPoint.from_environ(),  # a test hook (ORCHESTRATOR_CRASH_AT)
            )
            rate = args.rate_limit / (60.0 * args.time_scale)  # the ETA's bound
            wording = attrs.evolve(WORDING, rate=rate)
            ended = await drive(
                batch, setup.inputs, voice=VOICE, wording=wording, tty=tty, report=args.report
            )
    except UsageError as exc:
        for problem in exc.problems:
            VOICE.fail(problem)
        return EXIT_USAGE
    return exit_code(ended, VOICE)


main_restore: Final = RECURO.command(run_restore, on_interrupt=RESUME)
"""`recuro restore`: the synchronous entry point the dispatcher calls."""


if __name__ == "__main__":  # `python -m orchestrator.cli._restore ...`: `recuro restore ...`
    from orchestrator.cli.recuro import main

    sys.exit(main(["restore", *sys.argv[1:]]))
