"""Serving an ASGI app with uvicorn on a socket we bind, with a ready signal and bounded slow clients.

The socket is bound before uvicorn starts (a busy port is a plain OSError, where uvicorn would exit the
process), readiness is reported through anyio's `task_status` (no polling), signals stay with the
application, and cancellation shuts the server down.

Keep-alive: an idle kept-alive connection stays open `keep_alive` seconds (75 by default, nginx's
`keepalive_timeout`), longer than common clients keep an idle pooled connection (httpx 5 s, aiohttp 15 s).
A server that closes first races the client's next request on that connection: the request reaches a
closing socket and the client sees "Server disconnected without sending a response" (uvicorn's default, 5
s, equals httpx's 5 s pool expiry). `read_timeout` bounds how long a client may take to send a request
once it connects or once it starts the next one (slow-loris); idle time between requests is keep-alive's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Final

import anyio
import anyio.abc

from _servekit._http import ASGIApp

__all__ = ["KEEP_ALIVE", "bind_socket", "serve"]

log = logging.getLogger("_servekit")

KEEP_ALIVE: Final = 75.0
"""Seconds an idle kept-alive connection stays open (nginx's default)."""


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A TCP socket bound to `host:port` (port 0 picks a free one); raises OSError when the port is taken."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else every
    # response whose body follows its headers in a second write waits ~40 ms for a delayed ACK).
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)  # noqa: FBT003 - the socket API takes a positional flag
    except BaseException:
        sock.close()
        raise
    return sock


def origin_of(sock: socket.socket) -> str:
    """`http://HOST:PORT` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    keep_alive: float = KEEP_ALIVE,
    read_timeout: float | None = None,
    date_header: bool = True,
    graceful_shutdown: float = 1.0,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until cancelled; report its origin ("http://HOST:PORT") once it listens.

    Pass a bound `sock` (see `bind_socket`; it is closed on exit) to get a busy port as an OSError before
    any task group wraps it. `date_header=False` leaves the Date header to the app. Needs asyncio.
    """
    import uvicorn

    if sock is None:
        sock = bind_socket(host, port)
    server: uvicorn.Server | None = None
    try:
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            ws="none",
            http=_protocol(read_timeout),
            timeout_keep_alive=keep_alive,  # type: ignore[arg-type]  # a float works (call_later)
            timeout_graceful_shutdown=graceful_shutdown,  # type: ignore[arg-type]
            server_header=False,
            date_header=date_header,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        task_status.started(origin_of(sock))
        await server.main_loop()  # ticks the Date header until cancelled
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            if server is not None and server.started:
                await server.shutdown(sockets=[sock])
        sock.close()


def _protocol(read_timeout: float | None) -> Any:
    """uvicorn's h11 protocol, or, with `read_timeout`, one that closes connections slow to send a request."""
    if read_timeout is None:
        return "h11"
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    waiting = (h11.IDLE, h11.SEND_BODY)  # the client's side: its request (head or body) unfinished

    class ReadDeadlineProtocol(H11Protocol):
        """Armed when a connection opens and when the bytes of a next request begin; disarmed once the
        request is received, so an idle kept-alive connection is left to the keep-alive timeout."""

        _read_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._settle()

        def on_response_complete(self) -> None:
            super().on_response_complete()  # may start a pipelined next request
            self._settle()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _settle(self) -> None:
            """Armed while a request is partly received; disarmed once it is in or between requests."""
            state = self.conn.their_state
            pending = bool(self.conn.trailing_data[0])
            if state is h11.IDLE and not pending and self.cycle is None:
                return  # a new connection, armed since it opened
            if state is h11.SEND_BODY or (state is h11.IDLE and pending):
                if self._read_deadline is None:
                    self._arm()
            else:
                self._disarm()

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                assert read_timeout is not None  # noqa: S101 (narrowed above)
                self._read_deadline = self.loop.call_later(read_timeout, self._deadline_passed)

        def _disarm(self) -> None:
            if self._read_deadline is not None:
                self._read_deadline.cancel()
                self._read_deadline = None

        def _deadline_passed(self) -> None:
            self._read_deadline = None
            if self.conn.their_state in waiting and not self.transport.is_closing():
                log.debug("closing a connection that did not send its request in time")
                self.transport.close()

    return ReadDeadlineProtocol
