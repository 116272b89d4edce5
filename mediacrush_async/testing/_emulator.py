"""`MediaCrushEmulator`: the object tests hold. It opens the service (gives it a runtime: background tasks,
a temp dir, a fetch client), serves its app on loopback, and lets tests observe and steer it."""

from __future__ import annotations

import contextlib
import enum
import shutil
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import anyio.abc
import attrs
import httpx

from _servekit._serve import bind_socket, origin_of
from _servekit._serve import serve as serve_app

from ._app import App
from ._config import FAILURE_STATUSES, EmulatorConfig
from ._lifecycle import Pipeline
from ._log import LogEntry
from ._service import MediaCrushService, Runtime

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
        self._service = MediaCrushService(self.config)
        self._app = App(self._service)
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
        runtime = self._service.runtime
        return runtime.spool_dir if runtime is not None else None

    def force_failure(self, file_hash: str, status: str, *, count: int = 1) -> None:
        """Make the next `count` processings of `file_hash` end in `status` (a failure status)."""
        if status not in FAILURE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FAILURE_STATUSES)}; got {status!r}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        self._service.force_failure(file_hash, status, count=count)

    async def wait_for_status(self, file_hash: str, status: str = "done") -> str:
        """Wait until `file_hash` reaches `status` or a later stage, or fails; return what it reached.

        Stages go pending < processing < ready < done; a failure status (error, timeout,
        unrecognised, internal_error) is returned as soon as it happens. Raises LookupError for an id
        that is neither a file nor a failed file. No polling: it wakes on each change. Bound it with
        `anyio.fail_after`.
        """
        if status not in _STAGES:
            raise ValueError(f"status must be one of {', '.join(_STAGES)}; got {status!r}")
        store = self._service.store
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
        return self._service.upload_budget.used(client)

    def stored_names(self) -> list[str]:
        """Names of the files currently served (`<hash>.<ext>`), sorted."""
        return sorted(self._service.store.stored)

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
            stack.callback(self._service.store.clear)
            self._service.runtime = Runtime(
                pipeline=Pipeline(self.config, self._service.store, spool, tg),
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
        self._service.runtime = None
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
        async with contextlib.AsyncExitStack() as stack:
            if self._state is _State.NEW:
                await stack.enter_async_context(self)
            elif self._state is _State.CLOSED:
                raise RuntimeError("this MediaCrushEmulator is closed")
            sock = bind_socket(host, port)
            self._base_url = origin_of(sock)
            stack.callback(setattr, self, "_base_url", None)
            await serve_app(
                self._app,
                sock=sock,
                date_header=False,  # the app sends its own Date, as it does in-process
                graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
                task_status=task_status,
            )


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
