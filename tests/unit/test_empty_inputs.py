"""A 0-byte local input is refused before any request, with the reason (issue 12, item 5)."""

from __future__ import annotations

import argparse
import io

import httpx
import pytest

from mediacrush_async import InvalidArgumentError, MediaCrushClient
from orchestrator._inputs import EMPTY_INPUT_CODE, empty_input_problem
from orchestrator.cli._restore import add_restore_arguments, run_restore
from orchestrator.cli.mediacrush import check_inputs


def test_the_pure_check_names_the_input_and_the_reason():
    """0 bytes is a problem naming the input; any other size is fine; URLs (size None) are not judged."""
    problem = empty_input_problem("reels/a.mov", 0)
    assert problem is not None
    assert "reels/a.mov" in problem
    assert "empty" in problem
    assert empty_input_problem("reels/a.mov", 1) is None
    assert empty_input_problem("https://example.org/a.mov", None) is None
    assert EMPTY_INPUT_CODE == "EmptyInput"


def test_mediacrush_upload_refuses_an_empty_file(tmp_path):
    """`mediacrush upload` lists an empty file among the problems found before any request."""
    empty = tmp_path / "empty.gif"
    empty.write_bytes(b"")
    problems = check_inputs([str(empty)], None)
    assert problems == [empty_input_problem(str(empty), 0)]


async def test_recuro_restore_refuses_an_empty_file_before_any_request(tmp_path, capsys):
    """`recuro restore` exits 2 naming the empty file; the (unreachable) API is never called."""
    empty = tmp_path / "reel.mov"
    empty.write_bytes(b"")
    parser = argparse.ArgumentParser()
    add_restore_arguments(parser)
    args = parser.parse_args(
        [str(empty), "--format", "Mp4H264", "--out", str(tmp_path / "out"),
         "--base-url", "http://127.0.0.1:9/api/1.0/"]
    )  # fmt: skip
    assert await run_restore(args, credentials=("k", "s"), tty=False) == 2
    assert f"{empty}: the file is empty (0 bytes)" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["path", "bytes", "file object"])
async def test_mediacrush_client_refuses_an_empty_upload_before_any_request(tmp_path, kind):
    """`upload_file` of 0 bytes raises InvalidArgumentError naming `file`, and sends nothing."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    path = tmp_path / "empty.gif"
    path.write_bytes(b"")
    file = {"path": path, "bytes": b"", "file object": io.BytesIO(b"")}[kind]
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        MediaCrushClient("https://mc.test", http_client=http) as client,
    ):
        with pytest.raises(InvalidArgumentError, match="empty") as info:
            await client.upload_file(file, filename="empty.gif")
    assert info.value.field == "file"
    assert sent == []
