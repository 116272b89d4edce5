"""download.php of the Recuro emulator over loopback: headers, ranges, validators, disk storage, curl."""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from recuro_async.testing import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    EmulatorConfig,
    RunningEmulator,
    expected_restored_bytes,
    expected_restored_file,
    run_emulator,
    serve_asgi,
)
from recuro_async.testing._faults import FaultPlan

AUTH = {"Authorization": f"{DEMO_API_KEY}:{DEMO_API_SECRET}"}
JOB = {"output_format": "MovProRes4444", "filters": ["ReGrain", "Noise"], "output_scaling": "2160"}
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def sample(size: int) -> bytes:
    """An MKV-looking original of `size` bytes."""
    head = bytes.fromhex("1A45DFA3")
    return head + bytes((i * 31 + i // 4096) % 256 for i in range(size - len(head)))


def expected(original: bytes) -> bytes:
    return expected_restored_bytes(original, **JOB)


class FileServer:
    """Serves one original at /film/old reel.mkv."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(self.content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": self.content})


@attrs.frozen
class Restored:
    """A restored file on a running emulator: its URL and the bytes it must have."""

    running: RunningEmulator
    client: httpx.AsyncClient
    file_id: str
    url: str
    original: bytes

    @property
    def body(self) -> bytes:
        return expected(self.original)


@contextlib.asynccontextmanager
async def restored(config: EmulatorConfig, original: bytes) -> AsyncIterator[Restored]:
    """Run an emulator, restore `original` through it, and hand over the restored file's URL."""
    async with (
        run_emulator(config) as running,
        anyio.create_task_group() as tg,
        httpx.AsyncClient(headers=AUTH, trust_env=False, timeout=30) as client,
    ):
        origin = await tg.start(functools.partial(serve_asgi, FileServer(original)))

        async def api(action: str, **params: Any) -> Any:
            response = await client.post(running.base_url, json={"action": action, **params})
            return response.json() if response.content else None

        file_id = (await api("UploadMedia", original_file_url=f"{origin}/film/old%20reel.mkv"))[
            "file_id"
        ]
        emu = running.emulator
        with anyio.fail_after(20):
            assert await emu.wait_for_state(file_id, "MediaCompleted") == "MediaCompleted"
            await api("StartJob", file_id=file_id, **JOB)
            assert await emu.wait_for_state(file_id, "JobCompleted") == "JobCompleted"
        url = (await api("GetProgress", file_id=file_id))["restored_file_url"]
        yield Restored(running, client, file_id, url, original)
        tg.cancel_scope.cancel()


FAST = EmulatorConfig(time_scale=0.01, rate_limit=100_000)


async def test_download_headers_and_body():
    """A plain GET answers 200 with the expected bytes and every header the document's curl line relies on."""
    async with restored(FAST, sample(30_000)) as r:
        response = await r.client.get(r.url)
    assert response.status_code == 200
    assert response.content == r.body
    headers = response.headers
    assert int(headers["content-length"]) == len(r.body)
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"].startswith('"')
    assert "last-modified" in headers
    assert headers["content-disposition"] == 'attachment; filename="old reel.mov"'
    assert headers["content-type"] == "video/quicktime"
    assert "content-encoding" not in headers


async def test_head_gives_the_headers_without_a_body():
    """HEAD answers the same headers with no body."""
    async with restored(FAST, sample(10_000)) as r:
        response = await r.client.head(r.url)
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(r.body)


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=100-199", 100, 199), ("bytes=1000-", 1000, None), ("bytes=-50", -50, None)],
    ids=["closed", "open-ended", "suffix"],
)
async def test_ranges_answer_206_with_content_range(range_header, start, end):
    """A single byte range answers 206 with a matching Content-Range and exactly those bytes."""
    async with restored(FAST, sample(20_000)) as r:
        response = await r.client.get(r.url, headers={"Range": range_header})
    body = r.body
    want = body[start : None if end is None else end + 1]
    first = start % len(body)
    assert response.status_code == 206
    assert response.content == want
    assert response.headers["content-range"] == f"bytes {first}-{first + len(want) - 1}/{len(body)}"


async def test_a_206_names_accept_ranges_only_when_switched_on():
    """Like nginx, a 206 carries no Accept-Ranges (the 200 does); `accept_ranges_on_206` adds it."""
    for switch in (False, True):
        config = attrs.evolve(FAST, accept_ranges_on_206=switch)
        async with restored(config, sample(30_000)) as r:
            part = await r.client.get(r.url, headers={"Range": "bytes=0-99"})
            whole = await r.client.get(r.url)
        assert part.status_code == 206
        assert part.content == r.body[:100]
        assert ("accept-ranges" in part.headers) is switch
        assert whole.headers["accept-ranges"] == "bytes"


async def test_if_range_honours_strong_validators_only():
    """If-Range with our ETag or Last-Modified gives 206; another or weak ETag gives the whole file."""
    async with restored(FAST, sample(20_000)) as r:
        first = await r.client.get(r.url)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        cases = {
            etag: 206,
            modified: 206,
            '"something-else"': 200,
            f"W/{etag}": 200,
            "Mon, 01 Jan 2001 00:00:00 GMT": 200,
        }
        for validator, status in cases.items():
            response = await r.client.get(
                r.url, headers={"Range": "bytes=5-", "If-Range": validator}
            )
            assert response.status_code == status, validator
            assert response.content == (r.body[5:] if status == 206 else r.body)


async def test_range_past_the_end_answers_416():
    """A range starting at or past the end answers 416 with `Content-Range: bytes */SIZE`."""
    async with restored(FAST, sample(5_000)) as r:
        size = len(r.body)
        response = await r.client.get(r.url, headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.json()["error_code"] == "RangeNotSatisfiable"


async def test_several_ranges_are_answered_with_the_whole_file():
    """A multi-range request is not supported and gets 200 with the whole file (RFC 9110 allows it)."""
    async with restored(FAST, sample(5_000)) as r:
        response = await r.client.get(r.url, headers={"Range": "bytes=0-1,5-6"})
    assert (response.status_code, response.content) == (200, r.body)


async def test_download_requires_authorization_and_a_known_guid():
    """Without credentials 401, with another account's or an unknown guid 404, without a guid 400."""
    config = EmulatorConfig(
        time_scale=0.01, credentials={DEMO_API_KEY: DEMO_API_SECRET, "k2": "s2"}
    )
    async with restored(config, sample(5_000)) as r:
        bare = httpx.AsyncClient(trust_env=False)
        async with bare:
            missing = await bare.get(r.url)
            wrong = await bare.get(r.url, headers={"Authorization": f"{DEMO_API_KEY}:nope"})
            other = await bare.get(r.url, headers={"Authorization": "k2:s2"})
        unknown = await r.client.get(
            r.running.download_base + "?guid=00000000-0000-4000-8000-000000000000"
        )
        no_guid = await r.client.get(r.running.download_base)
    assert (missing.status_code, missing.json()["error_code"]) == (401, "AuthorizationMissing")
    assert (wrong.status_code, wrong.json()["error_code"]) == (401, "AuthorizationInvalid")
    assert (other.status_code, other.json()["error_code"]) == (404, "RestoredFileNotFound")
    assert unknown.status_code == 404
    assert (no_guid.status_code, no_guid.json()["error_code"]) == (400, "GuidMissing")


async def test_large_media_live_on_disk_and_stream_from_there(tmp_path):
    """Media above the disk threshold are files in media_dir, served from disk, and removed on delete."""
    config = EmulatorConfig(
        time_scale=0.01, rate_limit=100_000, disk_threshold=256 * 1024, media_dir=tmp_path
    )
    original = sample(3 * 1024 * 1024 + 17)
    async with restored(config, original) as r:
        files = sorted(p.name for p in tmp_path.iterdir())
        assert any(name.endswith(".original") for name in files)
        assert any(name.endswith(".restored") for name in files)
        sizes = sorted(p.stat().st_size for p in tmp_path.iterdir())
        assert sizes == sorted([len(original), len(r.body)])
        async with r.client.stream("GET", r.url) as response:
            chunks = [chunk async for chunk in response.aiter_raw()]
        assert b"".join(chunks) == r.body
        deleted = await r.client.post(
            r.running.base_url, json={"action": "DeleteMedia", "file_id": r.file_id}
        )
        assert deleted.status_code == 200
        assert list(tmp_path.iterdir()) == []
    source = tmp_path / "original.bin"
    source.write_bytes(original)
    size = expected_restored_file(source, tmp_path / "restored.bin", **JOB)
    assert (tmp_path / "restored.bin").read_bytes() == r.body
    assert size == len(r.body)


async def test_truncated_downloads_resume_to_the_expected_bytes():
    """With every download cut short, Range requests from the bytes held still assemble the exact file."""
    config = EmulatorConfig(time_scale=0.01, rate_limit=100_000, truncate_rate=1.0, seed=3)
    async with restored(config, sample(200_000)) as r:
        held = b""
        with anyio.fail_after(20):
            for _ in range(500):
                if len(held) == len(r.body):
                    break
                headers = {"Range": f"bytes={len(held)}-"} if held else {}
                with contextlib.suppress(httpx.RemoteProtocolError):
                    async with r.client.stream("GET", r.url, headers=headers) as response:
                        assert response.status_code == (206 if held else 200)
                        async for chunk in response.aiter_raw():
                            held += chunk
        truncations = [f for f in r.running.emulator.faults if f.kind == "truncate"]
    assert held == r.body
    assert truncations


async def test_bandwidth_cap_paces_each_connection():
    """With a per-connection cap, one download takes about size / bandwidth seconds."""
    config = EmulatorConfig(time_scale=0.01, rate_limit=100_000, bandwidth=200_000)
    async with restored(config, sample(60_000)) as r:
        began = anyio.current_time()
        response = await r.client.get(r.url)
        took = anyio.current_time() - began
    assert response.content == r.body
    assert took >= len(r.body) / 200_000 * 0.9


# ---------------------------------------------------------------- the document's curl line


@needs_curl
async def test_curl_remote_header_name_half(tmp_path):
    """`curl -J -O` (the document's line without -C -) saves the file under its Content-Disposition name."""
    async with restored(FAST, sample(40_000)) as r:
        result = await anyio.run_process(
            [
                "curl", "--retry", "60", "--retry-delay", "1", "--retry-connrefused", "-sS",
                "-L", "-J", "-O", "-H", f"Authorization:{DEMO_API_KEY}:{DEMO_API_SECRET}", r.url,
            ],
            cwd=tmp_path,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "old reel.mov").read_bytes() == r.body


def _seed_truncating_only_the_first_download(rate: float) -> int:
    for seed in range(1000):
        plan = FaultPlan(
            seed, error_rate=0, drop_rate=0, truncate_rate=rate, job_failure_rate=0, latency=0
        )
        first, second = plan.truncate(None, 1000), plan.truncate(None, 1000)
        if first is not None and first > 100 and second is None:
            return seed
    raise AssertionError("no such seed")


@needs_curl
async def test_curl_continue_at_half_resumes_an_interrupted_download(tmp_path):
    """`curl -C -` after a first attempt cut short by a truncation fault ends with the expected bytes."""
    rate = 0.5
    config = EmulatorConfig(
        time_scale=0.01, truncate_rate=rate, seed=_seed_truncating_only_the_first_download(rate)
    )
    command = [
        "curl", "--retry", "60", "--retry-delay", "1", "--retry-connrefused", "-sS",
        "-L", "-O", "-C", "-", "-H", f"Authorization:{DEMO_API_KEY}:{DEMO_API_SECRET}",
    ]  # fmt: skip
    async with restored(config, sample(300_000)) as r:
        first = await anyio.run_process([*command, r.url], cwd=tmp_path, check=False)
        partial = tmp_path / "download.php"
        assert first.returncode == 18, first.stderr  # CURLE_PARTIAL_FILE
        assert 0 < partial.stat().st_size < len(r.body)
        second = await anyio.run_process([*command, r.url], cwd=tmp_path, check=False)
        assert second.returncode == 0, second.stderr
        statuses = [e.status for e in r.running.emulator.log if e.action == "download"]
    assert partial.read_bytes() == r.body
    assert statuses == [200, 206]


def test_expected_restored_file_matches_the_bytes_helper(tmp_path: Path):
    """The file helper and the bytes helper agree."""
    original = sample(100_000)
    (tmp_path / "in").write_bytes(original)
    expected_restored_file(tmp_path / "in", tmp_path / "out", **JOB)
    assert (tmp_path / "out").read_bytes() == expected(original)
