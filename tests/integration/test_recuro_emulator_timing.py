"""The emulator's `jitter` and `fetch_timing` over real loopback sockets (issue 14: other plausible servers).

Where the API document is silent the emulator can time things otherwise: seeded random analysis and job
times, and an UploadMedia that fetches the original before it answers. Driven with plain httpx.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import httpx
from test_recuro_emulator import AUTH, mov_bytes

from recuro_async.testing import (
    EmulatorConfig,
    ProcessingTimes,
    RunningEmulator,
    run_emulator,
    serve_asgi,
)

MIB = 1024 * 1024
NAMES = ("/a.mov", "/b.mov", "/c.mov", "/d.mov")


class GatedFiles:
    """Serves files; each response sends the first half of the body, then waits for its gate (open unless
    `gated`), then the rest. Records what was fully sent, in order."""

    def __init__(self, files: dict[str, bytes], *, gated: bool = False) -> None:
        self.files = files
        self.gates = {name: anyio.Event() for name in files}
        if not gated:
            for gate in self.gates.values():
                gate.set()
        self.half_sent = {name: anyio.Event() for name in files}
        self.completed: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        body = self.files.get(path)
        if body is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        half = len(body) // 2
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body[:half], "more_body": True})
        self.half_sent[path].set()
        await self.gates[path].wait()
        await send({"type": "http.response.body", "body": body[half:]})
        self.completed.append(path)


@contextlib.asynccontextmanager
async def served(
    config: EmulatorConfig, files: GatedFiles
) -> AsyncIterator[tuple[RunningEmulator, str, httpx.AsyncClient]]:
    """The emulator and the file server on loopback, and a client with the demo credentials."""
    async with (
        run_emulator(config) as running,
        anyio.create_task_group() as tg,
        httpx.AsyncClient(headers=AUTH, trust_env=False, timeout=30) as client,
    ):
        origin = await tg.start(functools.partial(serve_asgi, files))
        yield running, origin, client
        tg.cancel_scope.cancel()


async def api(
    client: httpx.AsyncClient, running: RunningEmulator, action: str, **params: Any
) -> httpx.Response:
    return await client.post(running.base_url, json={"action": action, **params})


async def wait_state(
    client: httpx.AsyncClient, running: RunningEmulator, file_id: str, wanted: str
) -> None:
    with anyio.fail_after(30):
        while True:
            body = (await api(client, running, "GetProgress", file_id=file_id)).json()
            assert "error_code" not in body, body
            if body["state"] == wanted:
                return
            await anyio.sleep(0.01)


# ---------------------------------------------------------------- jitter


def jittery(seed: int) -> EmulatorConfig:
    return EmulatorConfig(
        time_scale=0.01,
        rate_limit=100_000,
        seed=seed,
        jitter=0.5,
        media_base_seconds=20.0,
        job_base_seconds=20.0,
        fetch_timing="after-answer",  # run_pipeline releases each fetch after every upload answered
    )


async def run_pipeline(
    config: EmulatorConfig, *, finish_order: Sequence[int]
) -> dict[str, ProcessingTimes]:
    """Upload the four files in NAMES order, let their fetches finish in `finish_order` (indexes), start
    their jobs in that order too, and return the processing times drawn per file_id."""
    files = GatedFiles({name: mov_bytes(40_000) for name in NAMES}, gated=True)
    async with served(config, files) as (running, origin, client):
        ids = []
        for name in NAMES:
            response = await api(client, running, "UploadMedia", original_file_url=origin + name)
            ids.append(response.json()["file_id"])
        for index in finish_order:
            await files.half_sent[NAMES[index]].wait()
            files.gates[NAMES[index]].set()
            await running.emulator.wait_until(
                lambda i=index: running.emulator.processing_times(ids[i]).analysis is not None
            )
        assert files.completed == [NAMES[i] for i in finish_order]
        for index in finish_order:
            await wait_state(client, running, ids[index], "MediaCompleted")
            response = await api(
                client, running, "StartJob", file_id=ids[index], output_format="Mp4H264", filters=[]
            )
            assert response.status_code == 200, response.text
        for file_id in ids:
            await wait_state(client, running, file_id, "JobCompleted")
        return {file_id: running.emulator.processing_times(file_id) for file_id in ids}


async def test_jitter_draws_a_time_per_media_and_job_reproducible_whatever_the_order():
    """Same-sized media get different analysis and job times within [1-F, 1+F] of the formula; the same
    seed and requests draw the same times per file_id even when fetches and jobs run in another order;
    another seed draws others."""
    config = jittery(seed=11)
    first = await run_pipeline(config, finish_order=(0, 1, 2, 3))
    analysis = config.scaled(
        config.media_base_seconds + config.media_seconds_per_mib * 40_000 / MIB
    )
    job = config.scaled(config.job_base_seconds + config.job_seconds_per_mib * 40_000 / MIB)
    analyses = [t.analysis for t in first.values()]
    jobs = [t.jobs for t in first.values()]
    assert all(a is not None and 0.5 * analysis <= a <= 1.5 * analysis for a in analyses)
    assert all(len(j) == 1 and 0.5 * job <= j[0] <= 1.5 * job for j in jobs)
    assert len(set(analyses)) == len(NAMES)
    assert len({j[0] for j in jobs}) == len(NAMES)

    again = await run_pipeline(config, finish_order=(3, 2, 1, 0))
    assert again == first
    other = await run_pipeline(jittery(seed=12), finish_order=(0, 1, 2, 3))
    assert [t.analysis for t in other.values()] != analyses


async def test_without_jitter_the_times_are_exactly_the_formula():
    """jitter=0 (the default) keeps every duration exactly as before the option existed."""
    config = EmulatorConfig(time_scale=0.01, rate_limit=100_000, fetch_timing="after-answer")
    times = await run_pipeline(config, finish_order=(0, 1, 2, 3))
    # The emulator's own arithmetic, operation for operation: equal floats, not approximately equal.
    analysis = config.scaled(
        config.media_base_seconds + config.media_seconds_per_mib * 40_000 / MIB
    )
    job = config.scaled(config.job_base_seconds + config.job_seconds_per_mib * (40_000 / MIB))
    assert all(t == ProcessingTimes(analysis=analysis, jobs=(job,)) for t in times.values())


async def test_the_api_shows_the_drawn_analysis_time():
    """A media is not MediaCompleted before its own drawn analysis time has passed since its upload."""
    config = jittery(seed=5)
    files = GatedFiles({name: mov_bytes(40_000) for name in NAMES})
    async with served(config, files) as (running, origin, client):
        sent = {}
        for name in NAMES:
            sent_at = anyio.current_time()
            response = await api(client, running, "UploadMedia", original_file_url=origin + name)
            sent[response.json()["file_id"]] = sent_at
        for file_id, sent_at in sent.items():
            await wait_state(client, running, file_id, "MediaCompleted")
            drawn = running.emulator.processing_times(file_id).analysis
            assert drawn is not None
            assert anyio.current_time() - sent_at >= drawn


# ---------------------------------------------------------------- fetch_timing


async def upload_with_gate_released_when_idle(
    config: EmulatorConfig,
) -> tuple[GatedFiles, list[str], str]:
    """Upload one gated file; release the gate's second half once everything is idle (so an answer that
    does not wait for the fetch arrives first). Return the file server, the order of events, and the
    state GetProgress reported right after the answer."""
    files = GatedFiles({"/reel.mov": mov_bytes(200_000)}, gated=True)
    events: list[str] = []

    async def release() -> None:
        await files.half_sent["/reel.mov"].wait()
        await anyio.wait_all_tasks_blocked()
        events.append("released")
        files.gates["/reel.mov"].set()

    async with served(config, files) as (running, origin, client), anyio.create_task_group() as tg:
        tg.start_soon(release)
        response = await api(client, running, "UploadMedia", original_file_url=origin + "/reel.mov")
        events.append("answered")
        assert response.status_code == 200, response.text
        if files.completed:
            events.append("fetched")
        file_id = response.json()["file_id"]
        state = (await api(client, running, "GetProgress", file_id=file_id)).json()["state"]
        await wait_state(client, running, file_id, "MediaCompleted")
    return files, events, state


async def test_before_answer_fetches_the_whole_original_before_answering():
    """With fetch_timing="before-answer" the original is fully served before the file_id is answered, and
    GetProgress right after the answer is already past MediaUploading."""
    config = EmulatorConfig(time_scale=0.01, rate_limit=100_000, fetch_timing="before-answer")
    files, events, state = await upload_with_gate_released_when_idle(config)
    assert events == ["released", "answered", "fetched"]
    assert files.completed == ["/reel.mov"]
    assert state != "MediaUploading"


async def test_after_answer_answers_while_the_fetch_is_still_running():
    """The default answers at once: the answer arrives while the original is half served."""
    assert EmulatorConfig().fetch_timing == "after-answer"
    config = EmulatorConfig(time_scale=0.01, rate_limit=100_000, fetch_timing="after-answer")
    files, events, state = await upload_with_gate_released_when_idle(config)
    assert events == ["answered", "released"]
    assert state == "MediaUploading"
    assert files.completed == ["/reel.mov"]


async def test_before_answer_still_answers_the_file_id_when_the_fetch_fails():
    """An unreachable original is not a refusal of UploadMedia: the file_id comes back, and the media is
    already failed with MediaUploadFailed when the answer arrives."""
    config = EmulatorConfig(time_scale=0.01, rate_limit=100_000, fetch_timing="before-answer")
    files = GatedFiles({"/reel.mov": mov_bytes(1000)})
    async with served(config, files) as (running, origin, client):
        response = await api(client, running, "UploadMedia", original_file_url=origin + "/gone.mov")
        assert response.status_code == 200, response.text
        file_id = response.json()["file_id"]
        progress = await api(client, running, "GetProgress", file_id=file_id)
        assert (progress.status_code, progress.json()["error_code"]) == (400, "MediaUploadFailed")
