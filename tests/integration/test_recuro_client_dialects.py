"""The client against two dialects of the service: where the API document names no error code, the server
may use any, answer slowly and refuse a burst with 400 or 429 (issue 14, item 2).

Each test runs against the emulator as we read the document and against `ALTERNATE_ERROR_CODES` with 429
refusals and per-request latency: the client's documented flows must not depend on our codes.
"""

from __future__ import annotations

import pytest
from test_recuro_client_emulator import POLL, StaticFiles, client_for, emulator, mov, served

from recuro_async import RecuroAPIError, State
from recuro_async.testing import ALTERNATE_ERROR_CODES, expected_restored_bytes

DIALECTS = {
    "ours": {},
    "alternate": {"error_codes": ALTERNATE_ERROR_CODES, "refusal": "429", "latency": 0.02},
}


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> dict[str, object]:
    return DIALECTS[request.param]


def _code(dialect: dict[str, object], ours: str) -> str:
    codes = dialect.get("error_codes", {})
    assert isinstance(codes, dict)
    return str(codes.get(ours, ours))


async def test_the_whole_lifecycle_needs_no_code_of_ours(tmp_path, dialect):
    """Upload, analysis, job, byte-exact download and delete in either dialect."""
    original = mov(200_000, seed=3)
    async with (
        served(StaticFiles({"/reel.mov": original})) as media,
        emulator(**dialect) as running,
        client_for(running) as recuro,
    ):
        file_id = await recuro.upload_media(f"{media}/reel.mov")
        await recuro.wait_for(file_id, State.MEDIA_COMPLETED, poll_interval=POLL, timeout=30)
        await recuro.start_job(file_id, output_format="Mp4H264", filters=["Noise"])
        done = await recuro.wait_for(file_id, State.JOB_COMPLETED, poll_interval=POLL, timeout=30)
        assert done.restored_file_url is not None
        path = await recuro.download(done.restored_file_url, tmp_path)
        assert path.read_bytes() == expected_restored_bytes(
            original, output_format="Mp4H264", filters=["Noise"], output_scaling=None
        )
        await recuro.delete_media(file_id)
        assert await recuro.list_media() == []


async def test_refused_starts_carry_the_servers_own_code_and_start_nothing(dialect):
    """A premature and a second StartJob raise RecuroAPIError with whatever code the server chose; the
    media's state (what the document names) shows what happened: one job, started once."""
    async with (
        served(StaticFiles({"/slow.mov": mov(2_000_000)})) as media,
        emulator(media_seconds_per_mib=5.0, **dialect) as running,
        client_for(running) as recuro,
    ):
        file_id = await recuro.upload_media(f"{media}/slow.mov")
        with pytest.raises(RecuroAPIError) as premature:
            await recuro.start_job(file_id, output_format="Mp4H264", filters=["Noise"])
        assert premature.value.error_code == _code(dialect, "MediaNotReady")
        assert (await recuro.get_progress(file_id)).state < State.MEDIA_COMPLETED
        await recuro.wait_for(file_id, State.MEDIA_COMPLETED, poll_interval=POLL, timeout=60)
        await recuro.start_job(file_id, output_format="Mp4H264", filters=["Noise"])
        with pytest.raises(RecuroAPIError) as second:
            await recuro.start_job(file_id, output_format="Mp4H264", filters=["Noise"])
        assert second.value.error_code == _code(dialect, "JobAlreadyStarted")
        assert (await recuro.get_progress(file_id)).state > State.MEDIA_COMPLETED
        accepted = [e for e in running.emulator.log if e.action == "StartJob" and e.status == 200]
        assert len(accepted) == 1


async def test_an_unknown_id_is_an_api_error_with_the_servers_code(dialect):
    """GetProgress of an id the service never issued raises the server's code, whatever it is."""
    async with emulator(**dialect) as running, client_for(running) as recuro:
        with pytest.raises(RecuroAPIError) as unknown:
            await recuro.get_progress("no-such-id")
        assert unknown.value.error_code == _code(dialect, "MediaNotFound")
