"""One download in a fresh process, so its CPU and peak RSS can be compared with curl's.

``python3 -m benchmarks._dl_runner TOOL URL DEST_DIR [--segments N] [--base-url URL]`` with the API key
and secret in ``BENCH_RECURO_KEY`` / ``BENCH_RECURO_SECRET`` (never on the command line). TOOL is
``ours`` (`RecuroClient.download`, default options apart from `segments`), ``file`` (the same downloader
on a plain URL without credentials, for a common web server) or ``httpx`` (a plain httpx stream to disk,
as a user of the document would write it). Prints one JSON line: the transfer's own wall
and CPU seconds (imports and interpreter start-up excluded: the in-process figure) and the final path.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import time
from pathlib import Path

import anyio
import httpx

from _clientkit._download import download_file
from _clientkit._download_options import DownloadOptions


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _hwm() -> float:
    """Peak RSS since exec, from /proc (ru_maxrss would include the parent's size at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _ours(url: str, dest: Path, base_url: str, segments: int) -> Path:
    # Imported here (`main` loads it before the clock starts): the `file` tool, on a plain URL, does
    # not pay for the Recuro client's import.
    from recuro_async import DownloadOptions as RecuroDownloadOptions
    from recuro_async import RecuroClient

    key, secret = os.environ["BENCH_RECURO_KEY"], os.environ["BENCH_RECURO_SECRET"]
    options = RecuroDownloadOptions(segments=segments)
    async with RecuroClient(key, secret, base_url=base_url, download_options=options) as client:
        return await client.download(url, dest)


async def _file(url: str, dest: Path, segments: int) -> Path:
    async with httpx.AsyncClient() as client:
        return await download_file(client, url, dest, options=DownloadOptions(segments=segments))


async def _plain_httpx(url: str, dest: Path) -> Path:
    header = f"{os.environ['BENCH_RECURO_KEY']}:{os.environ['BENCH_RECURO_SECRET']}"
    path = dest / "download.bin"
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("GET", url, headers={"Authorization": header}) as response,
    ):
        response.raise_for_status()
        with path.open("wb") as handle:
            async for chunk in response.aiter_bytes():
                handle.write(chunk)
    return path


def main() -> None:
    """Run one download and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=("ours", "file", "httpx"))
    parser.add_argument("url")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--segments", type=int, default=1)
    parser.add_argument("--base-url", default="http://127.0.0.1/api/1.0/")
    args = parser.parse_args()
    if args.tool == "ours":
        importlib.import_module("recuro_async")
    cpu0, wall0 = _cpu(), time.perf_counter()
    if args.tool == "ours":
        path = anyio.run(_ours, args.url, args.dest, args.base_url, args.segments)
    elif args.tool == "file":
        path = anyio.run(_file, args.url, args.dest, args.segments)
    else:
        path = anyio.run(_plain_httpx, args.url, args.dest)
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    print(
        json.dumps(
            {"transfer_wall": wall, "transfer_cpu": cpu, "path": str(path), "vm_hwm_mib": _hwm()}
        )
    )


if __name__ == "__main__":
    main()
