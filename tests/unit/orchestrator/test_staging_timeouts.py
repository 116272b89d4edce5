"""Read deadlines on our own servers (issue 11 item 8): the staging server and the webhook receiver.

A client that connects and sends nothing, trickles its headers, or trickles a body is disconnected (or
answered 408) instead of holding a connection for ever; a slow *reader* of a long response is not.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import anyio
import anyio.abc
import pytest

from orchestrator._staging import LocalFileServer
from recuro_async.webhooks import WebhookReceiver

SHORT = 0.3  # the read deadline under test, in seconds


async def connect(url: str) -> anyio.abc.SocketStream:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return await anyio.connect_tcp(parts.hostname, parts.port)


async def read_until_closed(stream: anyio.abc.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while True:
            received += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return received


async def test_a_connection_that_sends_nothing_is_closed():
    """A half-open connection (no request at all) is closed after the read deadline."""
    async with LocalFileServer(read_timeout=SHORT) as server:
        stream = await connect(server.url)
        async with stream:
            began = time.monotonic()
            with anyio.fail_after(5):
                assert await read_until_closed(stream) == b""
    assert time.monotonic() - began >= SHORT * 0.5


async def test_trickled_headers_do_not_hold_the_connection(tmp_path):
    """Headers sent one byte every 0.1 s (4 s in all) are cut off at the deadline."""
    async with LocalFileServer(read_timeout=SHORT) as server:
        stream = await connect(server.url)
        request = b"GET /s/token/file HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
        closed = anyio.Event()

        async def trickle() -> None:
            for i in range(len(request)):
                if closed.is_set():
                    return
                try:
                    await stream.send(request[i : i + 1])
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    return
                await anyio.sleep(0.1)

        async with stream, anyio.create_task_group() as tg:
            tg.start_soon(trickle)
            with anyio.fail_after(3):
                answer = await read_until_closed(stream)
            closed.set()
    assert answer == b""


async def test_an_idle_kept_alive_connection_is_closed_after_a_response(tmp_path):
    """After one complete request and response, a connection that sends nothing more is closed."""
    media = tmp_path / "a.bin"
    media.write_bytes(b"x" * 100)
    async with LocalFileServer(read_timeout=SHORT) as server:
        staged = await server.stage(media)
        stream = await connect(server.url)
        async with stream:
            path = urlsplit(staged.source).path
            await stream.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            with anyio.fail_after(5):
                answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"x" * 100)


async def test_a_slow_reader_of_a_long_response_is_not_cut(tmp_path):
    """The deadline covers receiving the request only: a response read slowly is served in full."""
    media = tmp_path / "big.bin"
    data = bytes(range(256)) * 16_384  # 4 MiB, more than the socket buffers hold
    media.write_bytes(data)
    async with LocalFileServer(read_timeout=SHORT) as server:
        staged = await server.stage(media)
        stream = await connect(server.url)
        async with stream:
            path = urlsplit(staged.source).path
            await stream.send(
                f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            first = await stream.receive()
            await anyio.sleep(SHORT * 3)  # a slow reader: longer than the read deadline
            with anyio.fail_after(10):
                answer = first + await read_until_closed(stream)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == data


async def test_a_trickled_webhook_body_is_answered_408():
    """A POST whose body trickles (1 byte per 0.1 s) gets 408 at the receiver's body deadline."""
    receiver = WebhookReceiver(_ignore, body_timeout=SHORT)
    async with LocalFileServer(read_timeout=30) as server:
        hooks = server.mount("hooks", receiver)
        stream = await connect(server.url)
        path = urlsplit(hooks).path + receiver.path
        body = b'{"file_id": "1", "error_code": "MediaCompleted"}' + b" " * 100
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        async with stream:
            await stream.send(head)
            answer = b""
            with anyio.fail_after(5):
                for i in range(len(body)):
                    await stream.send(body[i : i + 1])
                    with anyio.move_on_after(0.1):
                        answer += await stream.receive()
                    if b"\r\n\r\n" in answer:
                        break
    assert answer.startswith(b"HTTP/1.1 408")


async def test_the_webhook_body_deadline_holds_under_any_server():
    """Called directly as an ASGI app with a body that never ends, the receiver answers 408."""
    receiver = WebhookReceiver(_ignore, body_timeout=SHORT)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": receiver.path, "headers": []}
    with anyio.fail_after(5):
        await receiver(scope, receive, send)
    assert sent[0]["status"] == 408


@pytest.mark.parametrize("bad", [0, -1, float("inf"), "3"])
def test_read_timeouts_are_validated(bad):
    """Timeouts must be positive finite numbers; the error names the field."""
    with pytest.raises(ValueError, match="read_timeout"):
        LocalFileServer(read_timeout=bad)
    with pytest.raises(ValueError, match="body_timeout"):
        WebhookReceiver(_ignore, body_timeout=bad)


async def _ignore(_notification: object) -> None:
    await anyio.lowlevel.checkpoint()
