"""A separate process hosting Recuro emulators for the benchmarks, driven by JSON lines on stdin.

``python3 -m benchmarks._emuhost SPEC_JSON`` starts one emulator per entry of ``SPEC_JSON["emulators"]``
(each with its own `EmulatorConfig` keywords and loopback port) and a small file server for originals
(``GET /files/NAME`` under ``SPEC_JSON["files"]``), prints one JSON line describing them, then answers one
JSON line per command line:

- ``{"cmd": "restore", "emulator": NAME, "file": NAME}``: restore a served original through the API
  (UploadMedia, wait, StartJob, wait) and return ``{"url", "size"}`` of the restored file.
- ``{"cmd": "drops", "emulator": NAME, "at": [POSITION, ...]}``: cut the connection of the download
  response that crosses each file position, once per position (a connection drop on demand).
- ``{"cmd": "counters", "emulator": NAME}``: download responses and body bytes sent since the last call.
- ``{"cmd": "times", "emulator": NAME, "file_ids": [...]}``: the analysis and job times each media drew
  (real seconds; `[analysis, job, ...]`, analysis None if it never ran).
- ``{"cmd": "log", "emulator": NAME}``: the API request log (arrival times, actions, statuses) and the
  arrival times the rate limit admitted and refused.
- ``{"cmd": "quit"}`` (or end of input): stop.

Running the emulator in its own process keeps its CPU out of the client's figures and gives it a core.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import httpx

from recuro_async import RecuroClient, State
from recuro_async.testing import EmulatorConfig, RecuroEmulator, bind_socket, serve_asgi

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_SOCKET_KEY = "recuro_emulator.socket"  # EmulatorApp.SOCKET_KEY: the app is behind a real socket
_CHUNK = 1024 * 1024


class _Cut(Exception):
    """Raised inside `send` to abandon a download response mid-body."""


class Meter:
    """ASGI middleware: counts download body bytes sent, and cuts responses at planned file positions."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.cuts: list[int] = []
        self.responses = 0
        self.bytes_sent = 0
        self.cut_count = 0
        self.ranges: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, _SOCKET_KEY: True}
        if scope.get("type") != "http" or scope.get("path") != "/download.php":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.ranges.append(headers.get("range"))
        position = [0, 0]  # [status, file position of the next body byte]

        async def metered(message: Message) -> None:
            if message["type"] == "http.response.start":
                position[0] = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"content-range":
                        span = value.decode("latin-1").split()[-1]
                        position[1] = int(span.split("-")[0])
                if position[0] in (200, 206):
                    self.responses += 1
            elif message["type"] == "http.response.body" and position[0] in (200, 206):
                body: bytes = message.get("body", b"")
                start = position[1]
                cut = next((c for c in self.cuts if start < c < start + len(body)), None)
                if cut is not None:
                    self.cuts.remove(cut)
                    self.cut_count += 1
                    body = body[: cut - start]
                    self.bytes_sent += len(body)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    raise _Cut
                self.bytes_sent += len(body)
                position[1] += len(body)
            await send(message)

        try:
            await self.app(scope, receive, metered)
        except* _Cut:
            pass  # returning mid-body: uvicorn closes the connection


class FileApp:
    """Serves the files of one directory at ``/files/NAME`` (the originals the emulator fetches)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def __call__(self, scope: Scope, _receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        name = scope["path"].removeprefix("/files/")
        path = self.directory / name
        if "/" in name or not path.is_file():
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        size = path.stat().st_size
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(size).encode()),
                    (b"content-type", b"application/octet-stream"),
                ],
            }
        )
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        async with await anyio.open_file(path, "rb") as handle:
            sent = 0
            while sent < size:
                data = await handle.read(_CHUNK)
                if not data:
                    break
                sent += len(data)
                await send({"type": "http.response.body", "body": data, "more_body": sent < size})


class Hosted:
    """One emulator as served here, with its meter and the rate limit's decisions."""

    def __init__(self, emulator: RecuroEmulator, meter: Meter) -> None:
        self.emulator = emulator
        self.meter = meter
        self.base_url = ""
        self.origin = ""
        self.admitted: list[float] = []
        self.refused: list[float] = []
        limit = emulator.ratelimit
        admit = limit.admit

        def recording_admit(key: str, now: float) -> None:
            try:
                admit(key, now)
            except Exception:
                self.refused.append(now)
                raise
            self.admitted.append(now)

        limit.admit = recording_admit  # type: ignore[method-assign]


async def _serve(app: App, task_status: anyio.abc.TaskStatus[str]) -> None:
    await serve_asgi(app, sock=bind_socket("127.0.0.1", 0), task_status=task_status)


async def _restore(hosted: Hosted, files_origin: str, name: str) -> dict[str, Any]:
    cfg = hosted.emulator.config
    key = next(iter(cfg.credentials))
    async with RecuroClient(
        key, cfg.credentials[key], base_url=hosted.base_url, rate_limit=None
    ) as client:
        file_id = await client.upload_media(f"{files_origin}/files/{name}")
        await client.wait_for(file_id, State.MEDIA_COMPLETED, poll_interval=0.05)
        await client.start_job(file_id, output_format="Mp4H264", filters=["Noise"])
        done = await client.wait_for(file_id, State.JOB_COMPLETED, poll_interval=0.05)
    url = str(done.restored_file_url)
    async with httpx.AsyncClient(trust_env=False) as http:
        head = await http.head(url, headers={"authorization": f"{key}:{cfg.credentials[key]}"})
    return {"url": url, "size": int(head.headers["content-length"]), "file_id": file_id}


def _log(hosted: Hosted) -> dict[str, Any]:
    entries = hosted.emulator.log
    return {
        "entries": [[e.time, e.action, e.status, e.file_id] for e in entries],
        "admitted": hosted.admitted,
        "refused": hosted.refused,
        "window": hosted.emulator.config.rate_window,
        "limit": hosted.emulator.config.rate_limit,
    }


async def _answer(
    command: dict[str, Any], hosts: dict[str, Hosted], files_origin: str
) -> dict[str, Any]:
    hosted = hosts[command["emulator"]]
    match command["cmd"]:
        case "restore":
            return await _restore(hosted, files_origin, command["file"])
        case "drops":
            hosted.meter.cuts = sorted(int(x) for x in command["at"])
            return {"ok": True}
        case "counters":
            meter = hosted.meter
            out = {
                "responses": meter.responses,
                "bytes_sent": meter.bytes_sent,
                "cuts": meter.cut_count,
                "ranges": meter.ranges,
            }
            meter.responses = meter.bytes_sent = meter.cut_count = 0
            meter.ranges = []
            return out
        case "log":
            return _log(hosted)
        case "times":
            times = {f: hosted.emulator.processing_times(f) for f in command["file_ids"]}
            return {"times": {f: [t.analysis, *t.jobs] for f, t in times.items()}}
    raise ValueError(f"unknown command {command['cmd']!r}")


async def main(spec: dict[str, Any]) -> None:
    """Serve the emulators and the file server; answer commands until `quit` or end of input."""
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    hosts: dict[str, Hosted] = {}
    # The emulators are left normally (not cancelled) after the servers stop, so they clean up.
    async with contextlib.AsyncExitStack() as stack:
        for name, options in spec["emulators"].items():
            emulator = RecuroEmulator(EmulatorConfig(**options))
            await stack.enter_async_context(emulator)
            hosts[name] = Hosted(emulator, Meter(emulator.app))
        async with anyio.create_task_group() as tg:
            files_origin = await tg.start(_serve, FileApp(Path(spec.get("files", "."))))
            for hosted in hosts.values():
                hosted.origin = await tg.start(_serve, hosted.meter)
                hosted.base_url = f"{hosted.origin}/api/1.0/"
            await _command_loop(hosts, files_origin)
            tg.cancel_scope.cancel()


async def _command_loop(hosts: dict[str, Hosted], files_origin: str) -> None:
    cfg = next(iter(hosts.values())).emulator.config
    key = next(iter(cfg.credentials))
    _reply(
        {
            "files_origin": files_origin,
            "emulators": {
                n: {"base_url": h.base_url, "origin": h.origin} for n, h in hosts.items()
            },
            "api_key": key,
            "api_secret": cfg.credentials[key],
        }
    )
    while line := await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True):
        command = json.loads(line)
        if command.get("cmd") == "quit":
            return
        try:
            _reply(await _answer(command, hosts, files_origin))
        except Exception as exc:
            _reply({"error": f"{type(exc).__name__}: {exc}"})


def _reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    anyio.run(main, json.loads(sys.argv[1]))
