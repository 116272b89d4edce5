"""MediaCrushClient against the MediaCrush emulator over real loopback sockets (time-scaled)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from mediacrush_async import (
    Album,
    ByteBudget,
    File,
    InvalidArgumentError,
    MediaCrushClient,
    NotFoundError,
    NotOwnerError,
    ProcessingStatus,
    TooLargeError,
    UnsupportedMediaError,
    content_hash,
)
from mediacrush_async.testing import (
    EmulatorConfig,
    RunningEmulator,
    expected_derived_bytes,
    run_emulator,
    sample_media,
)

# Processing in a few tens of milliseconds; the 420 window is byte_window * time_scale seconds.
FAST = {"time_scale": 0.005}
POLL = 0.01
OTHER_ADDRESS = "10.9.8.7"


@pytest.fixture(params=[False, True], ids=["plain", "cors"])
def cors(request) -> bool:
    return request.param


class Env:
    """One emulator and two clients: `mc` (the uploader) and `stranger` (another address)."""

    def __init__(
        self, running: RunningEmulator, mc: MediaCrushClient, stranger: MediaCrushClient
    ) -> None:
        self.running = running
        self.mc = mc
        self.stranger = stranger


@asynccontextmanager
async def emulated(cors: bool, config: EmulatorConfig | None = None) -> AsyncIterator[Env]:
    """Serve an emulator and open the clients inside the test's own task (no task group in a fixture)."""
    # The stranger is told apart by X-Real-IP from loopback, as the real server read it.
    async with (
        run_emulator(config or EmulatorConfig(**FAST)) as running,
        httpx.AsyncClient(headers={"X-Real-IP": OTHER_ADDRESS}) as http,
        MediaCrushClient(running.base_url, cors_status=cors) as mc,
        MediaCrushClient(running.base_url, cors_status=cors, http_client=http) as stranger,
    ):
        yield Env(running, mc, stranger)


def uploads(running: RunningEmulator) -> list[int]:
    """Statuses of the file uploads the emulator saw, in order."""
    return [e.status for e in running.emulator.log if e.route == "POST /api/upload/file"]


@pytest.mark.parametrize(
    ("kind", "name"), [("gif", "cat.gif"), ("mp3", "song.mp3"), ("png", "pic.png")]
)
async def test_upload_wait_download_every_derived_file(cors, tmp_path, kind, name):
    """Upload, wait for done, then every listed file and extra downloads as the emulator's transform of the bytes."""
    async with emulated(cors) as env:
        mc = env.mc
        data = sample_media(kind, size=20_000, seed=1)
        source = tmp_path / name
        source.write_bytes(data)
        up = await mc.upload_file(source)
        assert (up.hash, up.already_uploaded) == (content_hash(data), False)
        status = await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        assert status.status is ProcessingStatus.DONE
        assert isinstance(status.file, File)
        entries = [*status.file.files, *status.file.extras]
        assert entries
        assert status.file.files[0].file == f"/{up.hash}.{name.rsplit('.', 1)[1]}"
        out = tmp_path / "out"
        out.mkdir()
        for entry in entries:
            path = await mc.download(entry, out)
            expected = expected_derived_bytes(data, entry.file, original_ext=name.rsplit(".", 1)[1])
            assert path.read_bytes() == expected, entry.file
        blob = await mc.info(up.hash)
        assert isinstance(blob, File)
        assert blob.blob_type == status.file.blob_type


async def test_gif_flags_and_ownership(cors):
    """A GIF gets autoplay/loop/mute on and nsfw off; its uploader may change them, another address gets 401."""
    async with emulated(cors) as env:
        mc = env.mc
        stranger = env.stranger
        up = await mc.upload_file(sample_media("gif", seed=2), filename="anim.gif")
        await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        assert await mc.get_flags(up.hash) == {
            "autoplay": True,
            "loop": True,
            "mute": True,
            "nsfw": False,
        }
        after = await mc.set_flags(up.hash, nsfw=True, loop=False)
        assert after == {"autoplay": True, "loop": False, "mute": True, "nsfw": True}
        assert await stranger.get_flags(up.hash) == after
        with pytest.raises(NotOwnerError):
            await stranger.set_flags(up.hash, nsfw=False)
        assert await mc.get_flags(up.hash) == after


async def test_unknown_flag_for_the_type_is_refused(cors):
    """A known flag that this file's type lacks (autoplay on an image) is refused with 415 and nothing changes."""
    async with emulated(cors) as env:
        mc = env.mc
        up = await mc.upload_file(sample_media("png", seed=3), filename="pic.png")
        await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        with pytest.raises(UnsupportedMediaError):
            await mc.set_flags(up.hash, nsfw=True, autoplay=True)
        assert await mc.get_flags(up.hash) == {"nsfw": False}


async def test_delete_by_owner_and_refusal_for_others(cors):
    """Another address cannot delete (401); the uploader can, and the hash is gone afterwards."""
    async with emulated(cors) as env:
        mc = env.mc
        stranger = env.stranger
        up = await mc.upload_file(sample_media("jpeg", seed=4), filename="photo.jpg")
        await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        with pytest.raises(NotOwnerError):
            await stranger.delete(up.hash)
        assert await mc.exists(up.hash) is True
        await mc.delete(up.hash)
        assert await mc.exists(up.hash) is False
        with pytest.raises(NotFoundError):
            await mc.info(up.hash)


async def test_duplicate_upload(cors):
    """The same bytes again: skipped by the /exists pre-check, or answered 409 with the object when forced."""
    async with emulated(cors) as env:
        mc = env.mc
        running = env.running
        data = sample_media("gif", seed=5)
        first = await mc.upload_file(data, filename="a.gif")
        await mc.wait(first.hash, poll_interval=POLL, timeout=30)
        skipped = await mc.upload_file(data, filename="a.gif")
        assert (skipped.hash, skipped.already_uploaded, skipped.file) == (first.hash, True, None)
        assert uploads(running) == [200]
        forced = await mc.upload_file(data, filename="a.gif", skip_existing=False)
        assert (forced.hash, forced.already_uploaded) == (first.hash, True)
        assert isinstance(forced.file, File)
        assert uploads(running) == [200, 409]


async def test_album_create_read_and_limits(cors, tmp_path):
    """An album of two files reads back as an Album; an album inside an album is 415, an unknown item 404."""
    async with emulated(cors) as env:
        mc = env.mc
        a = await mc.upload_file(sample_media("gif", seed=6), filename="a.gif")
        b = await mc.upload_file(sample_media("png", seed=7), filename="b.png")
        for h in (a.hash, b.hash):
            await mc.wait(h, poll_interval=POLL, timeout=30)
        album_hash = await mc.create_album([a.hash, b.hash, a.hash])
        album = await mc.info(album_hash)
        assert isinstance(album, Album)
        assert [f.hash for f in album.files] == [a.hash, b.hash, a.hash]
        many = await mc.info_many([a.hash, album_hash, "AAAAAAAAAAAA"])
        assert isinstance(many[a.hash], File)
        assert isinstance(many[album_hash], Album)
        assert many["AAAAAAAAAAAA"] is None
        with pytest.raises(UnsupportedMediaError):
            await mc.create_album([a.hash, album_hash])
        with pytest.raises(UnsupportedMediaError):
            await mc.status(album_hash)
        with pytest.raises(NotFoundError):
            await mc.create_album(["AAAAAAAAAAAA"])
        with pytest.raises(InvalidArgumentError):
            await mc.create_album([a.hash] * 1025)


async def test_album_over_the_servers_limit_is_413(tmp_path, cors):
    """With the server's album limit lowered, a bigger album is refused with 413 (checked after existence)."""
    async with (
        run_emulator(EmulatorConfig(max_album_items=2, **FAST)) as running,
        MediaCrushClient(running.base_url, cors_status=cors) as mc,
    ):
        up = await mc.upload_file(sample_media("gif", seed=8), filename="a.gif")
        with pytest.raises(TooLargeError):
            await mc.create_album([up.hash] * 3)


async def test_status_many_split_over_requests(cors):
    """A long status list is split over several requests and answers every hash."""
    async with emulated(cors) as env:
        mc = env.mc
        running = env.running
        up = await mc.upload_file(sample_media("gif", seed=9), filename="a.gif")
        await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        hashes = [up.hash] + [f"{i:012d}" for i in range(250)]
        result = await mc.status_many(hashes)
        assert list(result) == hashes
        done = result[up.hash]
        assert done is not None
        assert done.status is ProcessingStatus.DONE
        assert all(result[h] is None for h in hashes[1:])
        lists = [e for e in running.emulator.log if e.route.startswith("GET /api/status")]
        assert len(lists) > 1


async def test_non_media_ends_unrecognised(cors):
    """Bytes that are not media are accepted and end in a terminal failure status."""
    async with emulated(cors) as env:
        mc = env.mc
        up = await mc.upload_file(sample_media("text", seed=10), filename="notes.txt")
        status = await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        assert status.status is ProcessingStatus.UNRECOGNISED
        assert status.status.is_terminal
        assert await mc.exists(up.hash) is False


async def test_url_upload_and_url_info(cors):
    """A URL upload of a file the emulator serves gets a hash, and url_info maps that URL to its file."""
    async with emulated(cors) as env:
        mc = env.mc
        running = env.running
        up = await mc.upload_file(sample_media("png", seed=11), filename="p.png")
        await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        url = f"{running.base_url}/{up.hash}.png"
        again = await mc.upload_url(url)
        assert again.hash
        info = await mc.url_info([url, "https://example.invalid/never.gif"])
        assert isinstance(info[url], File)
        assert info["https://example.invalid/never.gif"] is None


def _window(byte_window: float) -> dict[str, float]:
    return {"byte_window": byte_window, **FAST}


async def test_budget_keeps_the_client_under_420(tmp_path):
    """With a budget matching the server's limit, three uploads that together exceed it meet no 420."""
    config = EmulatorConfig(byte_limit=25_000, **_window(200.0))
    window = config.byte_window * config.time_scale
    async with run_emulator(config) as running:
        budget = ByteBudget(max_bytes=25_000, period=window)
        async with MediaCrushClient(running.base_url, byte_budget=budget) as mc:
            for seed in range(3):
                up = await mc.upload_file(
                    sample_media("gif", size=10_000, seed=20 + seed), filename="g.gif"
                )
                assert up.already_uploaded is False
        assert uploads(running) == [200, 200, 200]


async def test_forced_over_the_limit_the_client_pauses_and_recovers(tmp_path):
    """With pacing off, the third upload meets 420; the client pauses for the window and then succeeds."""
    config = EmulatorConfig(byte_limit=25_000, **_window(200.0))
    window = config.byte_window * config.time_scale
    async with run_emulator(config) as running:
        budget = ByteBudget(max_bytes=None, period=window)
        async with MediaCrushClient(running.base_url, byte_budget=budget) as mc:
            for seed in range(3):
                up = await mc.upload_file(
                    sample_media("gif", size=10_000, seed=30 + seed), filename="g.gif"
                )
                assert up.already_uploaded is False
        assert uploads(running) == [200, 200, 420, 200]
        statuses = [e for e in running.emulator.log if e.route == "POST /api/upload/file"]
        assert statuses[3].time - statuses[2].time >= window * 0.9


async def test_nginx_413_for_a_body_over_the_front_servers_limit(cors):
    """A file over the front server's body limit is refused with its HTML 413 page: TooLargeError."""
    config = EmulatorConfig(max_body_size=10_000, **FAST)
    async with emulated(cors, config) as env:
        with pytest.raises(TooLargeError):
            await env.mc.upload_file(sample_media("gif", size=20_000, seed=40), filename="big.gif")


async def test_document_shapes_and_server_quirks_are_tolerated(cors, tmp_path):
    """With the emulator's switches for the document's shapes and issue #356, the client gives the same answers."""
    config = EmulatorConfig(
        doc_exists_200=True,
        doc_status_result_only_when_done=True,
        doc_status_list_without_file=True,
        doc_png_thumbnails=True,
        doc_flags_without_nsfw=True,
        broken_409_object=True,
        **FAST,
    )
    async with emulated(cors, config) as env:
        mc = env.mc
        data = sample_media("mp4", size=20_000, seed=41)
        up = await mc.upload_file(data, filename="clip.mp4")
        status = await mc.wait(up.hash, poll_interval=POLL, timeout=30)
        assert status.status is ProcessingStatus.DONE
        assert status.file is not None
        assert await mc.exists("AAAAAAAAAAAA") is False
        listed = await mc.status_many([up.hash])
        assert listed[up.hash] is not None
        assert listed[up.hash].status is ProcessingStatus.DONE
        again = await mc.upload_file(data, filename="clip.mp4", skip_existing=False)
        assert (again.hash, again.already_uploaded, again.file) == (up.hash, True, None)
        out = await mc.download(status.file.extras[0], tmp_path)
        assert out.suffix == ".png"
