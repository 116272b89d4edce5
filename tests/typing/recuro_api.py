"""Checked by mypy --strict, never run: the public Recuro API has the shapes users rely on."""

from __future__ import annotations

from pathlib import Path

from recuro_async import Filter, OutputFormat, Progress, RateLimit, RecuroClient, State
from recuro_async.webhooks import Notification, parse_notification


async def flow() -> None:
    async with RecuroClient("key", "secret", rate_limit=RateLimit(max_requests=200, period=60.0)) as recuro:
        file_id: str = await recuro.upload_media("https://example.org/reel1.mov", notify_url=None)
        await recuro.wait_for(file_id, State.MEDIA_COMPLETED, poll_interval=5.0, timeout=None)
        await recuro.start_job(
            file_id,
            output_format=OutputFormat.MP4_H264,
            filters=[Filter.NOISE, Filter.COLOR_BALANCE],
            output_scaling="1080",
        )
        done: Progress = await recuro.wait_for(file_id, State.JOB_COMPLETED)
        assert done.restored_file_url is not None
        path: Path = await recuro.download(done.restored_file_url, "restored/", progress=lambda d, t: None)
        await recuro.delete_media(file_id)
        ordered: bool = State.MEDIA_COMPLETED < State.JOB_QUEUED
        phase: str = done.state.phase
        del path, ordered, phase


def parse(body: bytes) -> Notification:
    return parse_notification(body)
