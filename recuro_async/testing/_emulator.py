"""RecuroEmulator: the object tests hold. It runs the service (entering gives it a runtime), serves its
app over loopback, and lets tests observe it (the log, faults, callbacks, states)."""

from __future__ import annotations

import contextlib
import functools
import math
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import attrs
import httpx

from _servekit import _serve
from recuro_async.testing._app import EmulatorApp
from recuro_async.testing._callbacks import CallbackAttempt
from recuro_async.testing._catalog import STATES, ApiError, canonical_state
from recuro_async.testing._config import EmulatorConfig
from recuro_async.testing._faults import FaultPlan, FaultRecord
from recuro_async.testing._lifecycle import ProcessingTimes
from recuro_async.testing._log import LogEntry, RequestLog
from recuro_async.testing._ratelimit import SlidingWindowLimit
from recuro_async.testing._service import RecuroService, Runtime

__all__ = [
    "CallbackAttempt",
    "ProcessingTimes",
    "RecuroEmulator",
    "RunningEmulator",
    "bind_socket",
    "run_emulator",
    "serve_asgi",
]


class RecuroEmulator:
    """An emulator of the Recuro Media API 1.0: an ASGI app plus the tasks that make media move.

    Use it as an async context manager (it owns a task group for fetches, restorations and callbacks);
    `app` serves requests only while it is entered. `serve` runs it on loopback with uvicorn.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self._service = RecuroService(self.config)
        self._app = EmulatorApp(self._service)
        self._state = "new"
        self._stack: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        return (
            f"<RecuroEmulator {self._state} media={len(self._service.media)} "
            f"requests={len(self.request_log)}>"
        )

    @property
    def ratelimit(self) -> SlidingWindowLimit:
        """The per-key sliding-window rate limit."""
        return self._service.ratelimit

    @property
    def fault_plan(self) -> FaultPlan:
        """The seeded fault plan."""
        return self._service.fault_plan

    @property
    def request_log(self) -> RequestLog:
        """Every API and download request, in arrival order."""
        return self._service.request_log

    # ------------------------------------------------------------ lifecycle

    @property
    def app(self) -> EmulatorApp:
        """The ASGI application (mount it with `httpx.ASGITransport(app=emulator.app)`)."""
        return self._app

    @property
    def running(self) -> bool:
        """Whether the emulator is entered (its app can serve)."""
        return self._state == "running"

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("a RecuroEmulator can be entered only once")
        stack = contextlib.AsyncExitStack()
        try:
            if self.config.media_dir is None:
                directory = Path(
                    await anyio.to_thread.run_sync(tempfile.mkdtemp, "", "recuro-emulator-")
                )
                stack.push_async_callback(_remove_tree, directory)
            else:
                directory = self.config.media_dir
                await anyio.to_thread.run_sync(
                    functools.partial(directory.mkdir, parents=True, exist_ok=True)
                )
            http = await stack.enter_async_context(
                httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(self.config.fetch_timeout))
            )
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            self._service.runtime = Runtime(tg, http, directory)
            stack.callback(setattr, self._service, "runtime", None)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._state = "running"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = "closed"
        stack, self._stack = self._stack, None
        if stack is not None:
            return await stack.__aexit__(exc_type, exc, tb)
        return None

    async def aclose(self) -> None:
        """Stop background work and remove the media directory (same as leaving `async with`)."""
        await self.__aexit__(None, None, None)

    def _require_running(self) -> None:
        if self._state != "running":
            raise RuntimeError(
                "the RecuroEmulator is not running: use `async with RecuroEmulator(...)`"
            )

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve over real sockets with uvicorn until cancelled; report the API base URL when listening.

        `await task_group.start(emulator.serve)` returns e.g. "http://127.0.0.1:PORT/api/1.0/". Pass an
        already bound `sock` (see `bind_socket`) to get a busy port as a plain OSError before any task
        group wraps it.
        """
        self._require_running()
        await serve_asgi(
            self._socket_app,
            host=host,
            port=port,
            sock=sock,
            task_status=_ApiBaseStatus(task_status),
        )

    async def _socket_app(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Any],
        send: Callable[[Any], Any],
    ) -> None:
        await self._app({**scope, EmulatorApp.SOCKET_KEY: True}, receive, send)

    # ------------------------------------------------------------ observation

    @property
    def log(self) -> list[LogEntry]:
        """The request log, oldest first."""
        return self.request_log.entries()

    @property
    def faults(self) -> list[FaultRecord]:
        """Every fault injected so far, in order."""
        return list(self.fault_plan.record)

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        """Every notify_url POST attempted so far, in order."""
        return list(self._service.callbacks)

    @property
    def callbacks_lost(self) -> list[str]:
        """The file_ids whose callback `callback_loss` never sent (one entry per lost callback)."""
        return list(self._service.callbacks_lost)

    def media_ids(self, api_key: str | None = None) -> list[str]:
        """The file_ids currently stored (of one account, or of all), oldest first."""
        return self._service.media_ids(api_key)

    def state_of(self, file_id: str) -> str:
        """The current state of a media file, or its error_code when it failed or does not exist."""
        media = self._service.media.get(file_id)
        if media is None:
            return "MediaNotFound"
        try:
            return media.snapshot(anyio.current_time()).state
        except ApiError as exc:
            return exc.code

    async def wait_for_state(self, file_id: str, state: str) -> str:
        """Wait until a media file reaches `state` or a later one, or fails; return what it reached.

        Returns the state, or the error_code (MediaUploadFailed, MediaFormatUnsupported, JobFailed,
        MediaNotFound). Exact and cheap: it sleeps until the next transition of the media's timeline or
        the next event (fetch done, restored file written, a request). Bound it with `anyio.fail_after`.
        """
        wanted = canonical_state(state)
        if wanted is None:
            raise ValueError(f"unknown state {state!r}; valid states: {', '.join(STATES)}")
        rank = STATES.index(wanted)
        while True:
            media = self._service.media.get(file_id)
            if media is None:
                return "MediaNotFound"
            now = anyio.current_time()
            try:
                reached = media.snapshot(now).state
            except ApiError as exc:
                return exc.code
            if STATES.index(reached) >= rank:
                return reached
            changed = self._service.changed
            upcoming = media.next_change(now)
            with anyio.move_on_after(math.inf if upcoming is None else upcoming - now):
                await changed.wait()

    def peak_window_count(self, window: float | None = None) -> int:
        """The most API requests that arrived within any `window` seconds (default: the rate window)."""
        span = self.config.rate_window if window is None else window
        times = [e.time for e in self.request_log.entries() if e.action != "download"]
        best = lo = 0
        for hi, t in enumerate(times):
            while times[lo] <= t - span:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds; it is rechecked after each request, fetch, restoration and callback.

        Bound it with `anyio.fail_after`. Time-driven state changes alone do not wake it: poll those.
        """
        while not predicate():
            await self._service.changed.wait()

    def notify(self) -> None:
        """Wake `wait_until` callers."""
        self._service.notify()

    def processing_times(self, file_id: str) -> ProcessingTimes:
        """The analysis and job running times drawn for `file_id` (real seconds; with `jitter`, each its
        own), kept after DeleteMedia, so a benchmark can compute its lower bound from what was drawn."""
        return self._service.processing_times.get(file_id, ProcessingTimes())

    def restored_bytes_sent(self, file_id: str) -> int:
        """Body bytes of `file_id`'s restored files handed to the HTTP server so far, all downloads.

        An upper bound of what reached the client (a client that goes away loses what was buffered):
        what a test needs to show that a resumed download did not fetch the file again.
        """
        return self._service.restored_bytes_sent(file_id)


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a TCP socket for `serve_asgi` (raises OSError, e.g. when the port is taken)."""
    return _serve.bind_socket(host, port)


async def serve_asgi(
    app: Callable[[Any, Any, Any], Awaitable[None]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve any ASGI 3 app with uvicorn until cancelled; report its origin ("http://HOST:PORT") when listening.

    The socket is bound before uvicorn starts (or given, bound, as `sock`; it is closed on exit), so
    readiness needs no polling and a busy port raises OSError (uvicorn itself would exit the process).
    Used for the emulator and, in tests, for small helper servers.
    """
    await _serve.serve(app, host=host, port=port, sock=sock, task_status=task_status)


class _ApiBaseStatus(anyio.abc.TaskStatus[str]):
    """Turns the origin serve_asgi reports into the API base URL."""

    def __init__(self, inner: anyio.abc.TaskStatus[str]) -> None:
        self._inner = inner

    def started(self, value: str | None = None) -> None:
        self._inner.started(f"{value}/api/1.0/")


async def _remove_tree(path: Path) -> None:
    await anyio.to_thread.run_sync(functools.partial(shutil.rmtree, path, ignore_errors=True))


@attrs.frozen
class RunningEmulator:
    """An emulator served on loopback by `run_emulator`.

    Attributes:
        base_url: the API base URL, "http://127.0.0.1:PORT/api/1.0/".
        emulator: the RecuroEmulator (its log, faults, callbacks).
        download_base: the prefix of restored-file URLs, "http://127.0.0.1:PORT/download.php".
        origin: "http://127.0.0.1:PORT".
    """

    base_url: str
    emulator: RecuroEmulator
    download_base: str
    origin: str

    @property
    def api_key(self) -> str:
        """The first configured API key (the demo key by default)."""
        return next(iter(self.emulator.config.credentials))

    @property
    def api_secret(self) -> str:
        """The secret of `api_key`."""
        return self.emulator.config.credentials[self.api_key]

    def __repr__(self) -> str:
        return f"RunningEmulator(base_url={self.base_url!r})"


@contextlib.asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Run an emulator on loopback for the duration of the block."""
    sock = bind_socket(host, port)  # a busy port raises OSError here, not inside a task group
    async with RecuroEmulator(config) as emulator, anyio.create_task_group() as tg:
        base_url = await tg.start(functools.partial(emulator.serve, sock=sock))
        origin = base_url.removesuffix("/api/1.0/")
        try:
            yield RunningEmulator(base_url, emulator, f"{origin}/download.php", origin)
        finally:
            tg.cancel_scope.cancel()
