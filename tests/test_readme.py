"""Every fenced ```python block of README.md runs, as written, against the emulators (issue 12, item 6).

Each block is a complete program (a reader saves it and runs `python3 file.py`): the test writes the block's
exact text to a file and runs it in its own process, in a fresh working directory, with the environment
the README's "Try the snippets" section sets up:

- `RECURO_BASE_URL`, `RECURO_API_KEY`, `RECURO_API_SECRET`: the Recuro emulator on loopback;
- `MEDIACRUSH_BASE_URL`: the MediaCrush emulator on loopback;
- `VIDEO_URL`: a small `.mov` served over HTTP on loopback (the Recuro service fetches URLs, not files);
- the working directory holds `reel1.mov` (the same bytes) and `cat.gif` (a small GIF).

A block that exits non-zero, or runs longer than `TIMEOUT` seconds, fails the test.

Markers: an HTML comment on the line right before a block, `<!-- snippet: NAME[, NAME...] -->`, tells the
test what else the block needs. Known names are in `MARKERS`; an unknown name fails the test (so a typo
cannot silently exempt a block). `needs-redis` starts a throw-away `redis-server` on a free loopback port
and sets `REDIS_URL=redis://127.0.0.1:PORT/0`; without `redis-server` on PATH the block is skipped, with
the reason shown (a skip is never a pass). No marker exempts a block from running.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import attrs
import pytest
from redisserver import redis_server_binary

from mediacrush_async.testing import EmulatorConfig as MediaCrushConfig
from mediacrush_async.testing import run_emulator as run_mediacrush
from mediacrush_async.testing import sample_media
from recuro_async.testing import EmulatorConfig as RecuroConfig
from recuro_async.testing import run_emulator as run_recuro
from recuro_async.testing import serve_asgi

README: Final = Path(__file__).resolve().parents[1] / "README.md"
TIMEOUT: Final = 180.0
TIME_SCALE: Final = 0.01
# A QuickTime header (the emulators recognise containers by their first bytes), then filler.
MOV: Final = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + bytes(range(256)) * 64
MARKERS: Final = frozenset({"needs-redis"})
_MARKER: Final = re.compile(r"^<!--\s*snippet:\s*(?P<names>[^>]*?)\s*-->$")


@attrs.frozen
class Snippet:
    """One fenced python block: where it starts (1-based line of the fence), its markers, its text."""

    line: int
    markers: frozenset[str]
    code: str


def python_blocks(text: str) -> list[Snippet]:
    """Every ```python block of `text`, with the markers of the comment line right before it."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise AssertionError(f"README.md:{start + 1}: a ```python block is never closed")
            match = _MARKER.match(lines[start - 1].strip()) if start else None
            names = (
                frozenset(n.strip() for n in match["names"].split(",") if n.strip())
                if match
                else frozenset()
            )
            blocks.append(Snippet(start + 1, names, "\n".join(body) + "\n"))
        i += 1
    return blocks


SNIPPETS: Final = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_snippets_and_the_extractor_finds_them():
    """The README has the client, MediaCrush and embedding snippets, and the extractor sees each."""
    fences = sum(
        1 for line in README.read_text(encoding="utf-8").splitlines() if line.strip() == "```python"
    )
    assert len(SNIPPETS) == fences >= 3


def test_no_python_hides_under_another_fence_name():
    """```py, ```python3 or ```pycon would not be run: Python code is fenced as ```python only."""
    fences = [
        (n, line.strip())
        for n, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1)
        if line.strip().startswith("```")
    ]
    hidden = [
        f"README.md:{n}: {fence}"
        for n, fence in fences
        if fence.lower().startswith("```py") and fence != "```python"
    ]
    assert hidden == []


def test_the_extractor_reads_markers_and_only_the_line_right_before():
    """A marker applies to the block right after it, and several can be listed."""
    text = "<!-- snippet: needs-redis, other -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    first, second = python_blocks(text)
    assert (first.line, first.markers, first.code) == (2, {"needs-redis", "other"}, "x = 1\n")
    assert (second.markers, second.code) == (frozenset(), "y = 2\n")


def test_every_marker_is_known():
    """A marker the test does not know fails (a typo must not quietly change how a block runs)."""
    unknown = {f"README.md:{s.line}": sorted(s.markers - MARKERS) for s in SNIPPETS}
    assert {k: v for k, v in unknown.items() if v} == {}


async def _serve_video(
    *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"video/quicktime"), (b"content-length", b"%d" % len(MOV))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": MOV})

    await serve_asgi(app, task_status=task_status)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def _redis() -> AsyncIterator[dict[str, str]]:
    """A throw-away redis-server on a free loopback port, ready when it says so on stdout."""
    server = redis_server_binary()  # fails when missing, unless skipped on purpose (one policy)
    port = _free_port()
    command = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        try:
            seen = b""
            with anyio.fail_after(10):
                async for chunk in process.stdout:
                    seen += chunk
                    if b"Ready to accept connections" in seen:
                        break
            yield {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        finally:
            process.terminate()


@asynccontextmanager
async def snippet_environment(
    workdir: Path, markers: frozenset[str]
) -> AsyncIterator[dict[str, str]]:
    """The emulators, the served video and the staged files; yields the environment to run with."""
    (workdir / "reel1.mov").write_bytes(MOV)
    (workdir / "cat.gif").write_bytes(sample_media("gif", size=20_000, seed=1))
    async with AsyncExitStack() as stack:
        recuro = await stack.enter_async_context(run_recuro(RecuroConfig(time_scale=TIME_SCALE)))
        mediacrush = await stack.enter_async_context(
            run_mediacrush(MediaCrushConfig(time_scale=TIME_SCALE))
        )
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        origin = await tg.start(_serve_video)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECURO_", "MEDIACRUSH_"))}
        env |= {
            "RECURO_BASE_URL": recuro.base_url,
            "RECURO_API_KEY": recuro.api_key,
            "RECURO_API_SECRET": recuro.api_secret,
            "MEDIACRUSH_BASE_URL": mediacrush.base_url,
            "VIDEO_URL": f"{origin}/reel1.mov",
        }
        if "needs-redis" in markers:
            env |= await stack.enter_async_context(_redis())
        yield env


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"README.md:{s.line}" for s in SNIPPETS])
async def test_the_snippet_runs_against_the_emulators(snippet, tmp_path):
    """The block, saved as a file and run with python3, exits 0 within the time limit."""
    unknown = snippet.markers - MARKERS
    assert not unknown, f"README.md:{snippet.line}: unknown snippet markers {sorted(unknown)}"
    program = tmp_path / f"readme_{snippet.line}.py"
    program.write_text(snippet.code, encoding="utf-8")
    workdir = tmp_path / "work"
    workdir.mkdir()
    async with snippet_environment(workdir, snippet.markers) as env:
        with anyio.fail_after(TIMEOUT):
            result = await anyio.run_process(
                [sys.executable, str(program)], cwd=workdir, env=env, check=False
            )
    assert result.returncode == 0, (
        f"README.md:{snippet.line} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout.decode(errors='replace')}\n"
        f"--- stderr\n{result.stderr.decode(errors='replace')}"
    )


async def test_needs_redis_gives_a_block_a_live_redis(tmp_path):
    """The `needs-redis` marker's environment has REDIS_URL pointing at a redis-server that answers."""
    async with snippet_environment(tmp_path, frozenset({"needs-redis"})) as env:
        host, port = env["REDIS_URL"].removeprefix("redis://").removesuffix("/0").split(":")
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(b"PING\r\n")
            assert await stream.receive() == b"+PONG\r\n"
