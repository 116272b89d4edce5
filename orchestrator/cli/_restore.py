"""`recuro restore INPUT...`: a batch through the orchestrator, with progress, a journal and a report.

Everything the user typed is checked before any remote side effect: every local input exists, is a readable
file of a supported container, the job settings are valid (the client's own validation), the output
directory is writable, the journal (if any) belongs to this job, local inputs have a reachable staging URL,
and the credentials are configured. All problems are reported at once, with exit code 2.

Exit codes (SPEC 6): 0 all done, 1 some items failed (or were parked, or are pending), 2 usage or
configuration error, 130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import logging
import os
import sys
import tempfile
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from _clientkit._limiter import Pacing, SlidingWindowLimiter
from orchestrator._adapters.recuro import RecuroAdapter, status_from_notification
from orchestrator._budget import JournaledWindow
from orchestrator._effects import CrashPoint
from orchestrator._events import BatchDone
from orchestrator._inputs import empty_input_problem
from orchestrator._journal import Journal, JournalError
from orchestrator._polling import PollSettings
from orchestrator._report import Report, build_report
from orchestrator._runner import Runner, RunnerConfig
from orchestrator._service import JobSpec
from orchestrator._staging import LocalFileServer, is_url
from recuro_async import (
    INPUT_CONTAINERS,
    ConfigurationError,
    DownloadOptions,
    RateLimit,
    RecuroClient,
    RedisLimiter,
)
from recuro_async._constants import DEFAULT_TIMEOUT
from recuro_async.webhooks import Notification, WebhookReceiver

from ._render import make_renderer, print_summary
from ._shared import ExamplesFormatter, positive_float, positive_int
from ._signals import stderr_line, watch_interrupts

__all__ = [
    "DEFAULT_JOURNAL_NAME",
    "RESTORE_DESCRIPTION",
    "RESTORE_EPILOG",
    "RestoreSetupError",
    "add_restore_arguments",
    "main_restore",
    "run_restore",
]

DEFAULT_JOURNAL_NAME: Final = ".recuro-journal.sqlite"
_RATE_REQUESTS: Final = 200  # the API's rate limit: requests per 60 s window
# Little's law: items in flight = throughput x time each spends on the service. The rate budget finishes at
# most 200 / 60 s / ~3.2 calls per item (~1 item/s); 200 in flight keep it busy while items take up to ~3
# windows (B1: 32 gave 1.28x the lower bound at 300 items and 2.9x at 500; 200 gave 1.15x and 1.06x).
DEFAULT_MAX_ACTIVE: Final = _RATE_REQUESTS
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
_LOCAL_NOTIFY: Final = "local"

RESTORE_DESCRIPTION: Final = (
    "Restore every INPUT (a local media file or an http(s) URL) with one job each: upload, wait for "
    "analysis, start the job, wait, download the restored file into DIR (resumable, verified) and delete "
    "the remote media. All calls share one limiter (200 requests per sliding minute). Everything typed is "
    "checked before any request. A journal in DIR records every step: rerun the same command after a "
    "crash or Ctrl-C and it resumes; items that failed are tried again only with --retry-failed. Local "
    "files are served to the service by a built-in file server (see --stage-url)."
)
RESTORE_EPILOG: Final = """\
examples:
  recuro restore reels/*.mov --format Mp4H264 --filter Noise --filter ColorBalance --scale 1080 --out restored/
  recuro restore --from-file urls.txt --format MovProRes422Hq --out restored/ --report report.json
  recuro restore reels/*.mov --format Mp4H264 --out restored/ \\
      --stage-url https://files.example.com/ --stage-bind 127.0.0.1:8600   # service not on loopback

Exit codes: 0 all done, 1 some items failed, 2 usage or configuration error, 130 interrupted
(rerun the same command to resume)."""


class RestoreSetupError(Exception):
    """The command cannot start: one message per problem, all found before any remote call."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


# ---------------------------------------------------------------------- arguments


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
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        help=f"the batch journal (default: DIR/{DEFAULT_JOURNAL_NAME}); rerun to resume",
    )
    parser.add_argument(
        "--keep-remote", action="store_true", help="do not delete media from the account"
    )
    parser.add_argument(
        "--max-active",
        type=positive_int,
        default=DEFAULT_MAX_ACTIVE,
        metavar="N",
        help=f"media on the account at once (default: {DEFAULT_MAX_ACTIVE}, the rate limit's requests "
        "per window: by Little's law the rate budget, about 3.2 calls per item, keeps that many items "
        "busy while each spends up to about three rate windows on the service; lower it to cap the "
        "media held on the account, raise it for jobs that take longer)",
    )
    parser.add_argument(
        "--notify-url",
        metavar="URL",
        help="public base URL of the local server for callbacks (webhook mode); "
        f"'{_LOCAL_NOTIFY}' uses the server's own address (loopback services)",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="try the items that failed before again"
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="write a JSON report to FILE")
    parser.add_argument(
        "--stage-url",
        metavar="URL",
        help="public base URL where the local file server is reachable "
        "(default: its own address when the API is on loopback)",
    )
    parser.add_argument(
        "--stage-bind",
        metavar="HOST:PORT",
        help="where the local file server listens (default: 127.0.0.1 on a free port)",
    )
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="scale the poll intervals and the rate-limit window (for an emulator run with --time-scale)",
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
        default=_RATE_REQUESTS,
        metavar="N",
        help=f"API requests the account allows per 60 s window (default: {_RATE_REQUESTS}, "
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
        "(redis://, unix://; default: $RECURO_REDIS_URL, else this process alone)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine decides")
    _add_connection_arguments(parser)


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    from ._common import add_connection_arguments

    with contextlib.suppress(argparse.ArgumentError):  # the dispatcher may have added them
        add_connection_arguments(parser)


# ---------------------------------------------------------------------- setup (no remote calls)


@attrs.define
class _Setup:
    inputs: list[str]
    client: RecuroClient
    adapter: RecuroAdapter
    spec: JobSpec
    journal: Path
    config: RunnerConfig
    needs_server: bool
    bind: tuple[str, int]
    stage_url: str | None
    notify_base: str | None
    window: JournaledWindow


def _is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_list(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _check_input(text: str) -> str | None:
    """A problem with one input, or None."""
    if is_url(text):
        parts = urllib.parse.urlsplit(text)
        return None if parts.netloc else f"{text}: not a valid URL"
    if "://" in text:
        return f"{text}: only http(s) URLs or local files can be restored"
    path = Path(text).expanduser()
    if not path.exists():
        return f"{text}: no such file"
    if not path.is_file():
        return f"{text}: not a regular file"
    if path.suffix.lower() not in INPUT_CONTAINERS:
        allowed = ", ".join(sorted(e.lstrip(".").upper() for e in INPUT_CONTAINERS))
        return f"{text}: unsupported container {path.suffix or '(no extension)'!r}; supported: {allowed}"
    try:
        with path.open("rb") as handle:
            handle.read(1)
        size = path.stat().st_size
    except OSError as exc:
        return f"{text}: cannot read the file ({exc.strerror})"
    return empty_input_problem(text, size)


def _check_out_dir(out: Path) -> str | None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".recuro-write-test-"):
            pass
    except OSError as exc:
        return f"--out {out}: not a writable directory ({exc.strerror or exc})"
    return None


def _parse_bind(text: str | None) -> tuple[str, int]:
    if not text:
        return ("127.0.0.1", 0)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--stage-bind {text!r}: expected HOST:PORT")
    return (host.strip("[]") or "127.0.0.1", int(port))


def _check_files(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Inputs and the problems with them and with the output directory (runs in a thread)."""
    problems: list[str] = []
    inputs = list(args.inputs)
    if args.from_file is not None:
        try:
            inputs.extend(_read_list(args.from_file))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"--from-file {args.from_file}: cannot read it ({exc})")
    if not inputs and not problems:
        problems.append("no inputs: name media files or URLs, or use --from-file")
    problems.extend(p for p in map(_check_input, inputs) if p is not None)
    out_problem = _check_out_dir(args.out)
    if out_problem:
        problems.append(out_problem)
    return inputs, problems


def _scaled_config(args: argparse.Namespace, notify_url: str | None) -> RunnerConfig:
    scale = args.time_scale
    return RunnerConfig(
        out_dir=args.out.resolve(),
        keep_remote=args.keep_remote,
        retry_failed=args.retry_failed,
        notify_url=notify_url,
        max_active=args.max_active,
        poll=PollSettings(
            min_interval=2.0 * scale,
            max_interval=60.0 * scale,
            webhook=notify_url is not None,
            reconcile_interval=300.0 * scale,
        ),
        settle=30.0 * scale,
        phase_timeout=args.stage_timeout * scale,
        backoff=1.0 * scale,
        backoff_cap=30.0 * scale,
    )


async def _setup(args: argparse.Namespace, credentials: tuple[str, str] | None) -> _Setup:
    inputs, problems = await anyio.to_thread.run_sync(_check_files, args)
    client: RecuroClient | None = None
    adapter: RecuroAdapter | None = None
    try:
        # the client's limiter, wrapped so that its window survives a kill (kept in the journal)
        # and paced (a token bucket in front of the log: a backlog goes out evenly, not at window edges)
        period = 60.0 * args.time_scale
        window = JournaledWindow(
            SlidingWindowLimiter(
                args.rate_limit,
                period,
                grace=DEFAULT_TIMEOUT,
                pacing=Pacing.even(args.rate_limit, period),
            )
        )
        downloads = DownloadOptions(segments=args.segments)
        limiter: dict[str, Any] = {"limiter": window}
        redis_url = args.redis_url or os.environ.get("RECURO_REDIS_URL")
        if redis_url:  # the window lives in Redis, shared and kept there; the client owns it
            os.environ["RECURO_REDIS_URL"] = redis_url
            limiter = {"rate_limit": RateLimit(args.rate_limit, 60.0 * args.time_scale)}
        if credentials is not None:
            client = RecuroClient(
                *credentials, base_url=args.base_url, download_options=downloads, **limiter
            )
        else:
            from ._common import client_from_args

            client = client_from_args(args, download_options=downloads, **limiter)
        if isinstance(client.limiter, RedisLimiter):
            window = JournaledWindow(client.limiter)  # its snapshots are empty: Redis keeps it
    except ConfigurationError as exc:
        problems.append(str(exc))
    if client is not None:
        try:
            adapter = RecuroAdapter(
                client, output_format=args.format, filters=args.filters, output_scaling=args.scale
            )
        except ValueError as exc:
            problems.append(str(exc))
    local = any(not is_url(i) for i in inputs)
    try:
        bind = _parse_bind(args.stage_bind)
    except ValueError as exc:
        problems.append(str(exc))
        bind = ("127.0.0.1", 0)
    loopback_api = _is_loopback_url(args.base_url)
    if args.stage_url and not args.stage_bind:
        problems.append("--stage-url needs --stage-bind HOST:PORT (the address it forwards to)")
    if local and not args.stage_url and not loopback_api:
        problems.append(
            "local inputs need --stage-url: the public URL at which the service can fetch them"
        )
    notify_base = args.notify_url
    if notify_base is not None and notify_base != _LOCAL_NOTIFY and not is_url(notify_base):
        problems.append(
            f"--notify-url {notify_base!r}: expected an http(s) URL or '{_LOCAL_NOTIFY}'"
        )
    journal = (args.journal or args.out / DEFAULT_JOURNAL_NAME).expanduser()
    spec = adapter.job_spec() if adapter is not None else None
    if spec is not None and not problems:
        try:
            await Journal.check(journal, spec)
        except JournalError as exc:
            problems.append(str(exc))
    if problems:
        if client is not None:
            await client.aclose()
        raise RestoreSetupError(problems)
    assert client is not None  # noqa: S101 - no problems means both exist
    assert adapter is not None  # noqa: S101
    assert spec is not None  # noqa: S101
    return _Setup(
        inputs=inputs,
        client=client,
        adapter=adapter,
        spec=spec,
        journal=journal,
        config=_scaled_config(args, None),
        needs_server=local or notify_base is not None,
        bind=bind,
        stage_url=args.stage_url,
        notify_base=notify_base,
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
    except RestoreSetupError as exc:
        for problem in exc.problems:
            stderr_line(f"error: {problem}")
        return EXIT_USAGE
    interrupted = False
    fatal: str | None = None
    journal = Journal(setup.journal, setup.spec)
    try:
        await journal.open()  # the run's lock first: a second run on this journal stops here
    except JournalError as exc:
        await setup.client.aclose()
        stderr_line(f"error: {exc}")
        return EXIT_USAGE
    async with setup.client, contextlib.aclosing(journal):
        async with contextlib.AsyncExitStack() as stack:
            server: LocalFileServer | None = None
            if setup.needs_server:
                server = await stack.enter_async_context(
                    LocalFileServer(bind=setup.bind, public_url=setup.stage_url)
                )
            runner_box: list[Runner] = []
            config = setup.config
            if setup.notify_base is not None and server is not None:
                receiver = WebhookReceiver(_consumer(runner_box, setup.adapter))
                hooks = server.mount("hooks", receiver)
                public = (
                    hooks
                    if setup.notify_base == _LOCAL_NOTIFY
                    else setup.notify_base.rstrip("/") + "/hooks"
                )
                config = attrs.evolve(config, notify_url=receiver.notify_url(public))
            runner = Runner(
                setup.adapter,
                journal,
                config=config,
                stager=server,
                crash_at=CrashPoint.from_environ(),  # a test hook (ORCHESTRATOR_CRASH_AT)
                window=setup.window,
            )
            runner_box.append(runner)
            if server is not None:
                server.set_fetch_hook(runner.record_fetch)
            async with runner, anyio.create_task_group() as tg:
                tg.start_soon(
                    functools.partial(watch_interrupts, runner.stop, runner.abort, say=stderr_line)
                )
                with make_renderer(tty=tty) as renderer:
                    async for event in runner.run(setup.inputs):
                        renderer.handle(event)
                        if isinstance(event, BatchDone):
                            interrupted = event.interrupted
                            fatal = event.error
                tg.cancel_scope.cancel()
            interrupted = interrupted or (runner.stopping and fatal is None)
        items = await journal.load()
    report = build_report(
        items, service="recuro", settings=setup.spec.settings, interrupted=interrupted
    )
    if args.report is not None:
        await anyio.Path(args.report).write_text(report.to_json(), encoding="utf-8")
    print_summary(report, tty=tty)
    if fatal is not None:
        stderr_line(f"error: the batch stopped: {fatal}; rerun the same command to resume")
        return EXIT_USAGE  # something to fix on our side (disk, journal), then rerun
    if interrupted:
        stderr_line("interrupted; rerun the same command to resume")
        return EXIT_INTERRUPTED
    _say_what_next(report)
    return EXIT_OK if not report.failed else EXIT_FAILED


def _say_what_next(report: Report) -> None:
    """After failures: how to retry them; after items stopped on our side: that a rerun resumes them."""
    totals = report.totals
    if totals["pending"]:
        stderr_line(
            f"{totals['pending']} item(s) stopped on our side and kept their media; "
            "rerun the same command to resume them"
        )
    if totals["failed"]:
        stderr_line(
            f"{totals['failed']} item(s) failed; rerun the same command with --retry-failed "
            "to try them again"
        )


def _consumer(runner_box: list[Runner], adapter: RecuroAdapter) -> Any:
    async def consume(notification: Notification) -> None:
        if runner_box:
            runner_box[0].notify(
                notification.file_id, status_from_notification(notification)
            )
        await anyio.lowlevel.checkpoint()

    return consume


def configure_logging(verbose: bool) -> None:
    """Engine decisions on stderr with -v; otherwise only errors (the renderer shows failures)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("recuro: %(levelname)s %(name)s: %(message)s"))
    for name in ("orchestrator", "recuro_async"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.setLevel(logging.INFO if verbose else logging.ERROR)


def main_restore(args: argparse.Namespace) -> int:
    """`recuro restore`: the synchronous entry point the dispatcher calls."""
    configure_logging(getattr(args, "verbose", False))
    try:
        return anyio.run(run_restore, args)
    except (
        KeyboardInterrupt
    ):  # outside the signal watcher: before it started or after the batch ended
        # Every transition is committed before the next side effect, so the journal is consistent here.
        stderr_line("interrupted; rerun the same command to resume")
        return EXIT_INTERRUPTED


def _standalone(argv: Sequence[str] | None = None) -> int:
    """`python -m orchestrator.cli._restore ...`: the restore command without the dispatcher."""
    parser = argparse.ArgumentParser(
        prog="recuro restore",
        description=RESTORE_DESCRIPTION,
        epilog=RESTORE_EPILOG,
        formatter_class=ExamplesFormatter,
    )
    add_restore_arguments(parser)
    return main_restore(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_standalone())
