"""B1's baselines, written the way a reader of the Recuro API document would write them.

``python3 -m benchmarks._baselines sequential|concurrent LIST OUT --base-url URL --time-scale X``
(credentials in ``BENCH_RECURO_KEY`` / ``BENCH_RECURO_SECRET``). LIST holds one original URL per line.

- sequential: one file at a time with a synchronous httpx client: UploadMedia, GetProgress every
  `interval` until MediaCompleted, StartJob, GetProgress every `interval` until JobCompleted, download,
  DeleteMedia.
- concurrent: the same steps for every file at once (`asyncio.gather`), every API call inside
  ``aiolimiter.AsyncLimiter(200, 60 * time_scale)`` as is.

Both treat a RateLimitExceeded answer the simple way: sleep `interval` and send the call again. The
document says nothing about poll intervals; 5 s (scaled) is the fixed interval used here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiolimiter
import httpx

JOB = {"output_format": "Mp4H264", "filters": ["Noise"]}


class ApiError(Exception):
    """An error answer other than a rate-limit refusal."""


def _auth() -> dict[str, str]:
    return {
        "Authorization": f"{os.environ['BENCH_RECURO_KEY']}:{os.environ['BENCH_RECURO_SECRET']}"
    }


def _decode(response: httpx.Response) -> tuple[bool, Any]:
    """(refused?, JSON or None); raises ApiError for any other error."""
    if response.status_code == 200:
        return False, (response.json() if response.content else None)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if body.get("error_code") == "RateLimitExceeded" or response.status_code == 429:
        return True, None
    raise ApiError(f"{response.status_code} {body.get('error_code')}")


def sequential(urls: list[str], out: Path, base: str, interval: float) -> int:
    """Restore the files one at a time; returns the number of rate-limit refusals met."""
    refusals = 0
    with httpx.Client(timeout=60) as client:

        def call(action: str, **params: Any) -> Any:
            nonlocal refusals
            while True:
                response = client.post(base, json={"action": action, **params}, headers=_auth())
                refused, data = _decode(response)
                if not refused:
                    return data
                refusals += 1
                time.sleep(interval)

        for url in urls:
            file_id = call("UploadMedia", original_file_url=url)["file_id"]
            while call("GetProgress", file_id=file_id)["state"] != "MediaCompleted":
                time.sleep(interval)
            call("StartJob", file_id=file_id, **JOB)
            while (progress := call("GetProgress", file_id=file_id))["state"] != "JobCompleted":
                time.sleep(interval)
            target = out / url.rsplit("/", 1)[-1]
            with (
                client.stream("GET", progress["restored_file_url"], headers=_auth()) as response,
                target.open("wb") as handle,
            ):
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    handle.write(chunk)
            call("DeleteMedia", file_id=file_id)
    return refusals


async def concurrent(urls: list[str], out: Path, base: str, interval: float, period: float) -> int:
    """Restore every file at once with asyncio.gather; returns the number of refusals met."""
    limiter = aiolimiter.AsyncLimiter(200, period)
    refusals = 0
    async with httpx.AsyncClient(timeout=60) as client:

        async def call(action: str, **params: Any) -> Any:
            nonlocal refusals
            while True:
                async with limiter:
                    response = await client.post(
                        base, json={"action": action, **params}, headers=_auth()
                    )
                refused, data = _decode(response)
                if not refused:
                    return data
                refusals += 1
                await asyncio.sleep(interval)

        async def wait(file_id: str, state: str) -> Any:
            while True:
                progress = await call("GetProgress", file_id=file_id)
                if progress["state"] == state:
                    return progress
                await asyncio.sleep(interval)

        async def one(url: str) -> None:
            file_id = (await call("UploadMedia", original_file_url=url))["file_id"]
            await wait(file_id, "MediaCompleted")
            await call("StartJob", file_id=file_id, **JOB)
            progress = await wait(file_id, "JobCompleted")
            target = out / url.rsplit("/", 1)[-1]
            async with client.stream(
                "GET", progress["restored_file_url"], headers=_auth()
            ) as response:
                response.raise_for_status()
                with target.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
            await call("DeleteMedia", file_id=file_id)

        await asyncio.gather(*(one(url) for url in urls))
    return refusals


def main() -> None:
    """Run one baseline; print its wall time and refusals as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("sequential", "concurrent"))
    parser.add_argument("list", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--time-scale", type=float, required=True)
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval, service s")
    args = parser.parse_args()
    urls = args.list.read_text().split()
    args.out.mkdir(parents=True, exist_ok=True)
    interval = args.interval * args.time_scale
    started = time.perf_counter()
    if args.kind == "sequential":
        refusals = sequential(urls, args.out, args.base_url, interval)
    else:
        refusals = asyncio.run(
            concurrent(urls, args.out, args.base_url, interval, 60.0 * args.time_scale)
        )
    print(json.dumps({"wall": time.perf_counter() - started, "refusals": refusals}))


if __name__ == "__main__":
    main()
