"""Upload sources: hashing a large in-memory upload never holds the event loop."""

from __future__ import annotations

import hashlib

import anyio
import anyio.lowlevel

from mediacrush_async import content_hash
from mediacrush_async._source import open_source


async def test_hashing_in_memory_bytes_yields_to_the_loop():
    """While a multi-MiB bytes upload is hashed chunk by chunk, other tasks keep running."""
    data = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB
    ticks = 0
    hashing = True

    async def ticker() -> None:
        nonlocal ticks
        while hashing:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    source = await open_source(data, filename="x.bin")
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            digest = await source.content_hash()
            hashing = False
    finally:
        await source.aclose()
    assert digest == content_hash(data)
    assert ticks >= 8, f"the loop ran other tasks only {ticks} times while hashing"
