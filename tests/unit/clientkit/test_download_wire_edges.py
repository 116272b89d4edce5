"""Two wire cases the range helpers decide, end to end over loopback (issue 17): a chunked response that
also carries a Content-Length, and a resume that has exactly one byte left to fetch."""

from __future__ import annotations

import anyio
import anyio.abc
import httpx
from rangeserver import RangeServer, serving

from _clientkit._download import DownloadOptions, download_file

BODY = bytes(range(256)) * 40


async def _chunked_with_length(stream: anyio.abc.ByteStream) -> None:
    """Answer with Transfer-Encoding: chunked AND a Content-Length (RFC 9112 6.3: chunked wins)."""
    async with stream:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive()
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(BODY[i : i + 3000]), BODY[i : i + 3000])
            for i in range(0, len(BODY), 3000)
        )
        await stream.send(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n%s0\r\n\r\n" % (len(BODY), chunks)
        )


async def test_a_chunked_body_with_a_content_length_is_written_without_its_framing(tmp_path):
    """The direct reader would read Content-Length raw bytes off the socket, chunk sizes and all."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _chunked_with_length)
        async with httpx.AsyncClient() as client:
            path = await download_file(
                client,
                f"http://127.0.0.1:{port}/file",
                tmp_path / "out",
                options=DownloadOptions(max_retries=0, chunk_size=1024, direct_read=True),
            )
        tg.cancel_scope.cancel()
    assert path.read_bytes() == BODY


async def test_a_resume_with_one_byte_left(tmp_path):
    """The first response is cut one byte short; the resume asks for `bytes=N-1-` and gets
    `bytes N-1-N-1/N`, a one-byte range, which must be taken."""
    server = RangeServer(content=BODY, drops=[len(BODY) - 1])
    async with serving(server) as base, httpx.AsyncClient() as client:
        path = await download_file(
            client,
            f"{base}/file",
            tmp_path / "out",
            options=DownloadOptions(backoff_base=0.0, chunk_size=1024),
        )
    assert path.read_bytes() == BODY
    assert [r.headers.get("range") for r in server.requests] == [None, f"bytes={len(BODY) - 1}-"]
    assert server.bytes_sent == len(BODY)
