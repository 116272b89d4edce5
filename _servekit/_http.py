"""ASGI plumbing shared by our servers: types, the lifespan handler, request bodies, small responses."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import anyio

__all__ = [
    "ASGIApp",
    "Body",
    "BodyTimeoutError",
    "ClientDisconnectedError",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "cancel_on_disconnect",
    "header_map",
    "lifespan",
    "send_bytes",
    "send_text",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Iterable[tuple[str, str]]


class ClientDisconnectedError(Exception):
    """The client went away before its request body arrived."""


class BodyTimeoutError(Exception):
    """The request body did not arrive within the body's deadline."""


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI lifespan scope: nothing to start or stop (our apps own no process-wide state)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def header_map(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (latin-1); the first of repeated names wins."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
    return headers


class Body:
    """A request body read chunk by chunk, with a size limit and a deadline for the whole body.

    `timeout` (seconds from the first read, None for none) raises `BodyTimeoutError`; a disconnect
    raises `ClientDisconnectedError`.
    """

    def __init__(self, receive: Receive, *, timeout: float | None = None) -> None:
        self._receive = receive
        self._timeout = timeout
        self._deadline: float | None = None
        self.done = False
        self.received = 0

    async def chunk(self) -> bytes | None:
        """The next chunk, or None at the end of the body."""
        if self.done:
            return None
        if self._deadline is None:
            self._deadline = anyio.current_time() + (
                math.inf if self._timeout is None else self._timeout
            )
        with anyio.move_on_after(self._deadline - anyio.current_time()) as scope:
            message = await self._receive()
        if scope.cancelled_caught:
            raise BodyTimeoutError
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        if not message.get("more_body", False):
            self.done = True
        data = bytes(message.get("body", b""))
        self.received += len(data)
        return data

    async def read(self, limit: int, *, drain_limit: int) -> tuple[bytes, bool]:
        """The whole body and False, or b"" and True when it exceeds `limit` (read on, up to
        `drain_limit` bytes, so the client gets to read the answer instead of a reset)."""
        chunks: list[bytes] = []
        while (data := await self.chunk()) is not None:
            if self.received <= limit:
                chunks.append(data)
            elif self.received > drain_limit:
                return b"", True
        if self.received > limit:
            return b"", True
        return b"".join(chunks), False

    async def drain(self, cap: int) -> None:
        """Read and drop what is left of the body, up to about `cap` bytes."""
        start = self.received
        while self.received - start <= cap and await self.chunk() is not None:
            pass


async def cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel `scope` when the client disconnects (run beside a long response)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def encode_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """ASGI header pairs (lower-case latin-1 bytes)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers = ()) -> None:
    """A complete response with `body` and its Content-Length."""
    raw = encode_headers(headers)
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_text(send: Send, status: int, text: str, headers: Headers = ()) -> None:
    """A text/plain (UTF-8) response."""
    await send_bytes(
        send, status, text.encode(), (("content-type", "text/plain; charset=utf-8"), *headers)
    )
