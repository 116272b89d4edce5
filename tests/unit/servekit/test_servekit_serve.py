"""The serving kit's uvicorn embedding: a ready signal with the origin, a busy port as OSError, lifespan."""

from __future__ import annotations

import anyio
import httpx
import pytest

from _servekit._http import Receive, Scope, Send, lifespan, send_text
from _servekit._serve import bind_socket, serve


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await send_text(send, 200, f"hello {scope['path']}")


async def test_serve_reports_its_origin_once_listening():
    """`await tg.start(serve, app)` returns http://HOST:PORT, already accepting requests."""
    async with anyio.create_task_group() as tg:
        origin = await tg.start(serve, app)
        assert origin.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{origin}/x")
        assert (response.status_code, response.text) == (200, "hello /x")
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        tg.cancel_scope.cancel()


def test_a_busy_port_is_an_oserror_before_any_task_group():
    """Binding first makes a taken port a plain OSError (uvicorn alone would exit the process)."""
    sock = bind_socket("127.0.0.1", 0)
    try:
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(OSError):
            bind_socket("127.0.0.1", port)
    finally:
        sock.close()


async def test_the_lifespan_handler_completes_startup_and_shutdown():
    """The one lifespan handler answers startup and shutdown, then returns."""
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return inbox.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    with anyio.fail_after(5):
        await lifespan(receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
