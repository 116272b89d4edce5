"""`MediaCrushEmulator`: owns the app's state, its background tasks, its temp dir, and serving it."""

from __future__ import annotations

import contextlib
import enum
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import attrs
import httpx

from ._app import App, Runtime
from ._config import FAILURE_STATUSES, EmulatorConfig
from ._lifecycle import Pipeline
from ._log import LogEntry

#: The processing stages in order (MEDIACRUSH.md section 4).
_STAGES = ("pending", "processing", "ready", "done")

#: uvicorn waits this long for open requests when the server stops.
_GRACEFUL_SHUTDOWN_SECONDS = 2


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class MediaCrushEmulator:
    """An emulated MediaCrush server (MEDIACRUSH.md), as an ASGI app and a loopback server.

    Use `async with MediaCrushEmulator(config) as emu:` around any use: it owns the processing
    tasks and the temporary directory that big media spill to. Then either mount `emu.app` with
    `httpx.ASGITransport` (requests come from 127.0.0.1, so `X-Real-IP` picks the client address) or
    serve it on loopback with `await task_group.start(emu.serve)`, which returns the base URL.

    `url_transport` replaces the transport that `/api/upload/url` fetches with (for tests).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        url_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self._app = App(self.config)
        self._url_transport = url_transport
        self._state = _State.NEW
        self._exit: contextlib.AsyncExitStack | None = None
        self._base_url: str | None = None

    def __repr__(self) -> str:
        return f"<MediaCrushEmulator {self._state.value} base_url={self._base_url!r}>"

    @property
    def app(self) -> App:
        """The ASGI application."""
        return self._app

    @property
    def base_url(self) -> str | None:
        """`http://127.0.0.1:PORT` while `serve()` runs, else None."""
        return self._base_url

    @property
    def log(self) -> list[LogEntry]:
        """Every request so far, oldest first (a copy)."""
        return self._app.log.entries()

    @property
    def spool_dir(self) -> Path | None:
        """The temporary directory holding big media while open."""
        return self._app.runtime.spool_dir if self._app.runtime is not None else None

    def force_failure(self, file_hash: str, status: str, *, count: int = 1) -> None:
        """Make the next `count` processings of `file_hash` end in `status` (a failure status)."""
        if status not in FAILURE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FAILURE_STATUSES)}; got {status!r}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        self._app.force_failure(file_hash, status, count=count)

    async def wait_for_status(self, file_hash: str, status: str = "done") -> str:
        """Wait until `file_hash` reaches `status` or a later stage, or fails; return what it reached.

        Stages go pending < processing < ready < done; a failure status (error, timeout,
        unrecognised, internal_error) is returned as soon as it happens. Raises LookupError for an id
        that is neither a file nor a failed file. No polling: it wakes on each change. Bound it with
        `anyio.fail_after`.
        """
        if status not in _STAGES:
            raise ValueError(f"status must be one of {', '.join(_STAGES)}; got {status!r}")
        store = self._app.store
        while True:
            record = store.files.get(file_hash)
            failed = store.failed.get(file_hash)
            if record is not None:
                if _STAGES.index(record.stage) >= _STAGES.index(status):
                    return record.stage
            elif failed is not None:
                return failed.status
            else:
                raise LookupError(f"{file_hash!r} is not a file of this emulator")
            await store.changed().wait()

    def bytes_counted(self, client: str) -> int:
        """Bytes counted against `client`'s upload limit in its current window."""
        return self._app.upload_budget.used(client)

    def stored_names(self) -> list[str]:
        """Names of the files currently served (`<hash>.<ext>`), sorted."""
        return sorted(self._app.store.stored)

    # ------------------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._state is not _State.NEW:
            raise RuntimeError(
                f"a MediaCrushEmulator can be opened once; this one is {self._state.value}"
            )
        self._state = _State.OPEN
        async with contextlib.AsyncExitStack() as stack:
            spool = Path(tempfile.mkdtemp(prefix="mediacrush-emulator-"))
            stack.callback(shutil.rmtree, spool, ignore_errors=True)
            timeout = self.config.url_fetch_timeout
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=self._url_transport,
                    follow_redirects=True,
                    timeout=httpx.Timeout(timeout),
                )
            )
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            stack.callback(self._app.store.clear)
            self._app.runtime = Runtime(
                pipeline=Pipeline(self.config, self._app.store, spool, tg),
                spool_dir=spool,
                http=http,
                task_group=tg,
            )
            self._exit = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None

    async def aclose(self) -> None:
        """Stop background work and delete the temporary directory (idempotent)."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._app.runtime = None
        if self._exit is not None:
            stack, self._exit = self._exit, None
            await stack.aclose()

    def __del__(self) -> None:
        if getattr(self, "_state", None) is _State.OPEN:
            warnings.warn(f"{self!r} was not closed", ResourceWarning, stacklevel=1)

    # ------------------------------------------------------------------------------ serving

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the app with uvicorn on `host:port` (0 = any free port) until cancelled.

        Reports `http://HOST:PORT` through `task_status.started()` once the socket listens, so
        `base_url = await task_group.start(emu.serve)` needs no sleeping or polling. Opens the
        emulator for the duration if it is not open yet. Needs the asyncio backend.
        """
        import uvicorn

        async with contextlib.AsyncExitStack() as stack:
            if self._state is _State.NEW:
                await stack.enter_async_context(self)
            elif self._state is _State.CLOSED:
                raise RuntimeError("this MediaCrushEmulator is closed")
            sock = _listen(host, port)
            stack.callback(sock.close)
            bound_host, bound_port = sock.getsockname()[:2]
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            base_url = f"http://{shown}:{bound_port}"
            config = uvicorn.Config(
                self._app,
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                date_header=False,  # the app sends its own Date, as it does in-process
                proxy_headers=False,  # the client address rule is the server's own (X-Real-IP)
                timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
            )
            server = _make_server(config)
            self._base_url = base_url
            stack.callback(setattr, self, "_base_url", None)
            async with anyio.create_task_group() as tg:

                async def run_server() -> None:
                    with anyio.CancelScope(shield=True):
                        await server.serve(sockets=[sock])

                tg.start_soon(run_server)
                task_status.started(base_url)
                try:
                    await anyio.sleep_forever()
                finally:
                    server.should_exit = True


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(256)
        sock.settimeout(0.0)
    except BaseException:
        sock.close()
        raise
    return sock


def _make_server(config: Any) -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """A uvicorn server that leaves signal handling to the caller."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer(config)


@attrs.frozen
class RunningEmulator:
    """An emulator served on loopback by `run_emulator`.

    Attributes:
        base_url: `http://127.0.0.1:PORT`.
        emulator: The emulator (its log, switches, failure forcing).
    """

    base_url: str
    emulator: MediaCrushEmulator


class run_emulator:  # noqa: N801 - used like a function: `async with run_emulator(cfg) as running`
    """Open an emulator and serve it on loopback for the duration of an `async with` block."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        url_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._emulator = MediaCrushEmulator(config, url_transport=url_transport)
        self._host = host
        self._port = port
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> RunningEmulator:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self._emulator)
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            base_url = await tg.start(self._serve)
            self._stack = stack.pop_all()
        return RunningEmulator(base_url=base_url, emulator=self._emulator)

    async def _serve(
        self, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await self._emulator.serve(host=self._host, port=self._port, task_status=task_status)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # Exit as if the body ended normally, so its own exception propagates unwrapped
        # (not inside the task group's ExceptionGroup); the server is cancelled either way.
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()
        return None
