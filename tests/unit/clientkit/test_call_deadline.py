"""A per-call deadline (connect + send + whole body) on every API call (issue 11 item 6).

The hostile server answers headers at once and then trickles the body one byte every 0.2 s: each read
completes well within any read timeout, so only a deadline on the whole call can end it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import httpx
import pytest
from anyio.abc import SocketAttribute

from _clientkit._failures import TransportFailure
from _clientkit._retry import RetryPolicy
from _clientkit._transport import send
from mediacrush_async import MediaCrushClient
from mediacrush_async import TransportError as MCTransportError
from recuro_async import RecuroClient, TransportError

BODY = b'{"padding": "' + b"x" * 200 + b'"}'
STEP = 0.2  # seconds between two body bytes: the whole body would take 43 s


class Trickler:
    """Counts requests; answers each with a JSON body sent one byte per `STEP` seconds."""

    def __init__(self) -> None:
        self.requests = 0

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await stream.receive()
                self.requests += 1
                await stream.send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n" % len(BODY)
                )
                for i in range(len(BODY)):
                    await stream.send(BODY[i : i + 1])
                    await anyio.sleep(STEP)


@contextlib.asynccontextmanager
async def trickling() -> AsyncIterator[tuple[str, Trickler]]:
    server = Trickler()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)  # noqa: S610 (anyio, not Django)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        try:
            yield f"http://127.0.0.1:{port}", server
        finally:
            tg.cancel_scope.cancel()


async def test_send_ends_a_trickled_body_at_the_deadline():
    """`send(deadline=0.6)` raises TransportFailure(request_sent=True) instead of waiting 43 s."""
    async with trickling() as (base, _server), httpx.AsyncClient(timeout=3) as client:
        began = time.monotonic()
        with anyio.fail_after(15), pytest.raises(TransportFailure, match="deadline") as caught:
            await send(
                client,
                lambda: client.build_request("GET", f"{base}/"),
                safe=True,
                policy=RetryPolicy(max_retries=0),
                classify=lambda _parts: None,
                deadline=0.6,
                log=__import__("logging").getLogger("_clientkit"),
                action="test",
            )
    assert caught.value.request_sent is True
    assert time.monotonic() - began < 5


async def test_recuro_call_with_timeout_3_and_no_retries_stops_at_its_deadline():
    """The issue's case: `timeout=3, max_retries=0`, 1 byte per 0.2 s: TransportError at the deadline."""
    async with (
        trickling() as (base, server),
        RecuroClient(
            "key",
            "secret",
            base_url=f"{base}/api/1.0/",
            timeout=3,
            max_retries=0,
            rate_limit=None,
            call_deadline=1.0,
        ) as client,
    ):
        began = time.monotonic()
        with anyio.fail_after(15), pytest.raises(TransportError) as caught:
            await client.list_filters()
        elapsed = time.monotonic() - began
    assert caught.value.request_sent is True
    assert "deadline" in str(caught.value)
    assert elapsed < 5
    assert server.requests == 1


async def test_recuro_default_deadline_is_twice_the_timeout():
    """Without `call_deadline`, `timeout=0.5` gives a 1 s deadline on the whole call."""
    async with (
        trickling() as (base, _server),
        RecuroClient(
            "key",
            "secret",
            base_url=f"{base}/api/1.0/",
            timeout=0.5,
            max_retries=0,
            rate_limit=None,
        ) as client,
    ):
        began = time.monotonic()
        with anyio.fail_after(15), pytest.raises(TransportError, match="deadline"):
            await client.get_progress("abc")
    assert time.monotonic() - began < 5


async def test_recuro_safe_call_is_retried_after_a_deadline_hit():
    """A safe call (ListFilters) is retried after a deadline like any transport failure."""
    async with (
        trickling() as (base, server),
        RecuroClient(
            "key",
            "secret",
            base_url=f"{base}/api/1.0/",
            max_retries=1,
            rate_limit=None,
            call_deadline=0.3,
        ) as client,
    ):
        with anyio.fail_after(15), pytest.raises(TransportError):
            await client.list_filters()
    assert server.requests == 2


async def test_mediacrush_call_stops_at_its_deadline():
    """MediaCrush calls have the same deadline (here given explicitly)."""
    async with (
        trickling() as (base, _server),
        MediaCrushClient(base, max_retries=0, call_deadline=1.0) as client,
    ):
        began = time.monotonic()
        with anyio.fail_after(15), pytest.raises(MCTransportError, match="deadline") as caught:
            await client.exists("abcdefghijkl")
    assert caught.value.request_sent is True
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("bad", [0, -1, float("inf"), "5", True])
def test_call_deadline_is_validated(bad):
    """A call deadline that is not a positive finite number is refused, naming the field."""
    with pytest.raises(ValueError, match="call_deadline"):
        RecuroClient("key", "secret", call_deadline=bad)
    with pytest.raises(ValueError, match="call_deadline"):
        MediaCrushClient(call_deadline=bad)
