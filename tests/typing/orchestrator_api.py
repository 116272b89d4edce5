"""Checked by mypy --strict, never run: the README's "embed the orchestrator" snippets and the adapters' protocols."""

from __future__ import annotations

from pathlib import Path

from mediacrush_async import MediaCrushClient
from orchestrator import (
    ItemDone,
    ItemFailed,
    Journal,
    LocalFileServer,
    MediaCrushAdapter,
    Notifier,
    Prechecker,
    RecuroAdapter,
    Runner,
    RunnerConfig,
    ServiceAdapter,
    Starter,
    Sweeper,
    open_batch,
)
from recuro_async import RecuroClient


async def restore(inputs: list[str], out: Path) -> list[str]:
    finished: list[str] = []
    async with RecuroClient() as client:
        adapter = RecuroAdapter(client, output_format="Mp4H264", filters=["Noise"])
        async with (
            Journal(out / ".recuro-journal.sqlite", adapter.job_spec()) as journal,
            LocalFileServer(public_url="https://files.example.org/") as stager,
            Runner(adapter, journal, config=RunnerConfig(out_dir=out), stager=stager) as runner,
        ):
            stager.set_fetch_hook(runner.record_fetch)
            async for event in runner.run(inputs):
                if isinstance(event, ItemDone | ItemFailed):
                    finished.append(type(event).__name__)
    return finished


async def restore_with_open_batch(inputs: list[str], out: Path) -> dict[str, int]:
    """The README's current snippet: `open_batch` assembles the same pieces."""
    async with RecuroClient() as client:
        adapter = RecuroAdapter(client, output_format="Mp4H264")
        async with open_batch(adapter, out, stager=LocalFileServer(), notify="local") as batch:
            async for event in batch.run(inputs):
                if isinstance(event, ItemDone):
                    batch.runner.stop()
    return batch.report().totals


def capabilities(recuro: RecuroClient, mediacrush: MediaCrushClient) -> list[ServiceAdapter]:
    """Both adapters satisfy the core protocol; Recuro's extra steps are the capability protocols."""
    starter: Starter = RecuroAdapter(recuro, output_format="Mp4H264")
    sweeper: Sweeper = RecuroAdapter(recuro, output_format="Mp4H264")
    notifier: Notifier = RecuroAdapter(recuro, output_format="Mp4H264")
    prechecker: Prechecker = MediaCrushAdapter(mediacrush)
    del starter, sweeper, notifier, prechecker
    return [RecuroAdapter(recuro, output_format="Mp4H264"), MediaCrushAdapter(mediacrush)]
