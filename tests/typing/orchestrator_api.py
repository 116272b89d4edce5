"""Checked by mypy --strict, never run: the README's "embed the orchestrator" snippet type-checks."""

from __future__ import annotations

from pathlib import Path

from orchestrator import (
    ItemDone,
    ItemFailed,
    Journal,
    LocalFileServer,
    RecuroAdapter,
    Runner,
    RunnerConfig,
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
