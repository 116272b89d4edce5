"""The orchestrator's MediaCrush flow (Runner + MediaCrushAdapter) against the emulator on loopback."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from mediacrush_async import MediaCrushClient, content_hash
from mediacrush_async.testing import (
    EmulatorConfig,
    RunningEmulator,
    expected_derived_bytes,
    run_emulator,
    sample_media,
)
from orchestrator import (
    Event,
    Item,
    ItemDone,
    ItemFailed,
    Journal,
    PollSettings,
    Runner,
    RunnerConfig,
    Stage,
)
from orchestrator._adapters.mediacrush import MediaCrushAdapter, read_manifest
from orchestrator._runner import input_key
from orchestrator._staging import PushStager

TIME_SCALE = 0.01
UPLOAD = "POST /api/upload/file"


def emulator():
    """The emulator on loopback (opened inside each test: its task group cannot span fixture phases)."""
    return run_emulator(EmulatorConfig(time_scale=TIME_SCALE))


def write(directory: Path, name: str, kind: str, *, seed: int = 1, size: int = 20_000) -> Path:
    path = directory / name
    path.write_bytes(sample_media(kind, size=size, seed=seed))
    return path


async def run_batch(
    running: RunningEmulator, inputs: list[Path], out: Path, *, keep_remote: bool = True
) -> tuple[list[Event], list[Item]]:
    """Run one batch to its end; its events and final items."""
    async with MediaCrushClient(running.base_url) as client:
        adapter = MediaCrushAdapter(client)
        config = RunnerConfig(
            out_dir=out,
            keep_remote=keep_remote,
            max_uploads=4,
            settle=0.0,
            poll=PollSettings(min_interval=0.01, max_interval=0.2),
            backoff=0.01,
        )
        async with (
            Journal(out / "journal.sqlite", adapter.job_spec()) as journal,
            Runner(adapter, journal, config=config, stager=PushStager()) as runner,
        ):
            with anyio.fail_after(20):
                events = [event async for event in runner.run([str(p) for p in inputs])]
            return events, runner.items


def check_outputs(item: Item, source: Path) -> int:
    """The item's manifest and every derived file it lists match the emulator; how many files."""
    data = source.read_bytes()
    manifest = read_manifest(item.output_path)
    assert manifest.hash == item.remote_id == content_hash(data)
    assert manifest.files
    for derived in manifest.files:
        assert derived.path is not None
        expected = expected_derived_bytes(data, derived.name, original_ext=source.suffix[1:])
        assert Path(derived.path).read_bytes() == expected, derived.name
    return len(manifest.files)


def uploads(running: RunningEmulator) -> int:
    return sum(1 for entry in running.emulator.log if entry.route == UPLOAD)


async def test_batch_downloads_and_deletes_every_file(tmp_path):
    """Each file is uploaded, processed, its derived files downloaded byte-exact, then deleted from the server."""
    sources = [
        write(tmp_path, "cat.gif", "gif"),
        write(tmp_path, "photo.png", "png", seed=2),
        write(tmp_path, "song.mp3", "mp3", seed=3),
        write(tmp_path, "clip.mp4", "mp4", seed=4, size=200_000),
    ]
    async with emulator() as running:
        events, items = await run_batch(running, sources, tmp_path / "out", keep_remote=False)
        left = running.emulator.stored_names()
    assert [i.stage for i in items] == [Stage.DONE] * 4
    assert [i.remote_deleted for i in items] == [True] * 4
    assert sum(check_outputs(i, s) for i, s in zip(items, sources, strict=True)) == 5 + 1 + 2 + 4
    assert len([e for e in events if isinstance(e, ItemDone)]) == 4
    assert left == []


@pytest.mark.parametrize("status", ["error", "timeout", "internal_error"])
async def test_failed_processing_fails_only_its_item(tmp_path, status):
    """A processing that ends in a failure status fails its item with that status; the other finishes."""
    bad = write(tmp_path, "bad.gif", "gif", seed=5)
    good = write(tmp_path, "good.png", "png", seed=6)
    async with emulator() as running:
        running.emulator.force_failure(content_hash(bad.read_bytes()), status)
        events, items = await run_batch(running, [bad, good], tmp_path / "out")
    failed = [e for e in events if isinstance(e, ItemFailed)]
    assert [(f.key, f.error_code) for f in failed] == [(input_key(str(bad)), status)]
    assert [i.stage for i in items] == [Stage.FAILED, Stage.DONE]
    check_outputs(items[1], good)


async def test_non_media_fails_as_unrecognised(tmp_path):
    """A file that is not media fails as `unrecognised` with a readable message."""
    text = write(tmp_path, "notes.txt", "text")
    async with emulator() as running:
        events, items = await run_batch(running, [text], tmp_path / "out")
    (failed,) = [e for e in events if isinstance(e, ItemFailed)]
    assert failed.error_code == "unrecognised"
    assert "not recognise the file as media" in failed.error_message
    assert items[0].stage is Stage.FAILED


async def test_a_file_already_on_the_server_is_not_sent_or_deleted(tmp_path):
    """Bytes the server already holds are found by their hash: no upload, and no delete even when asked."""
    source = write(tmp_path, "cat.gif", "gif", seed=7)
    async with emulator() as running:
        async with MediaCrushClient(running.base_url) as client:
            first = await client.upload_file(source)
        with anyio.fail_after(10):
            await running.emulator.wait_for_status(first.hash)
        _, items = await run_batch(running, [source], tmp_path / "out", keep_remote=False)
        async with MediaCrushClient(running.base_url) as client:
            still_there = await client.exists(first.hash)
        sent = uploads(running)
    assert items[0].stage is Stage.DONE
    check_outputs(items[0], source)
    assert (sent, still_there) == (1, True)


async def test_same_bytes_under_two_names_share_one_upload(tmp_path):
    """Two inputs with identical bytes both finish, with one upload and the same derived files."""
    one = write(tmp_path, "one.gif", "gif", seed=8)
    two = tmp_path / "two.gif"
    two.write_bytes(one.read_bytes())
    async with emulator() as running:
        _, items = await run_batch(running, [one, two], tmp_path / "out")
        sent = uploads(running)
    assert [i.stage for i in items] == [Stage.DONE, Stage.DONE]
    assert check_outputs(items[0], one) == check_outputs(items[1], two) == 5
    assert sent == 1


async def test_rerun_skips_done_items(tmp_path):
    """A second run with the same journal sends no upload and reports the done items as skipped."""
    source = write(tmp_path, "photo.png", "png", seed=9)
    out = tmp_path / "out"
    async with emulator() as running:
        await run_batch(running, [source], out)
        before = len(running.emulator.log)
        events, items = await run_batch(running, [source], out)
        after = len(running.emulator.log)
    (done,) = [e for e in events if isinstance(e, ItemDone)]
    assert done.skipped
    assert items[0].stage is Stage.DONE
    assert after == before


async def test_an_upload_left_open_by_a_crash_is_made_again_safely(tmp_path):
    """An upload intent left open (the request did reach the server) is resolved by uploading again: one file, done."""
    source = write(tmp_path, "cat.gif", "gif", seed=10)
    out = tmp_path / "out"
    out.mkdir()
    async with emulator() as running:
        async with MediaCrushClient(running.base_url) as client:
            await client.upload_file(source)  # the crashed run's request
            spec = MediaCrushAdapter(client).job_spec()
        key = input_key(str(source))
        item = Item(
            key=key,
            seq=0,
            input=str(source),
            output_path=str(out / "cat.gif.mediacrush.json"),
            spec_fingerprint=spec.fingerprint,
        )
        async with Journal(out / "journal.sqlite", spec) as journal:
            await journal.add([item])
            await journal.save(item, Stage.STAGED)
            await journal.save(item, Stage.UPLOADING)
        _, items = await run_batch(running, [source], out)
        sent = uploads(running)
    assert items[0].stage is Stage.DONE
    check_outputs(items[0], source)
    assert sent == 1


async def _until_uploaded(running: RunningEmulator, inputs: list[Path], out: Path) -> None:
    """A run killed (aborted) as soon as every upload was answered: a new process resumes it."""
    async with MediaCrushClient(running.base_url) as client:
        adapter = MediaCrushAdapter(client)
        config = RunnerConfig(out_dir=out, keep_remote=False, max_uploads=4, settle=0.0)
        async with (
            Journal(out / "journal.sqlite", adapter.job_spec()) as journal,
            Runner(adapter, journal, config=config, stager=PushStager()) as runner,
        ):
            uploaded = 0
            with anyio.fail_after(20):
                async for event in runner.run([str(p) for p in inputs]):
                    if getattr(event, "new", None) is Stage.UPLOADED:
                        uploaded += 1
                        if uploaded == len(inputs):
                            runner.abort()


async def test_what_the_batch_uploaded_is_deleted_after_a_restart(tmp_path):
    """Ownership lives in the journal: a new process deletes what the killed one uploaded, and only that."""
    mine = write(tmp_path, "mine.gif", "gif", seed=7)
    theirs = write(tmp_path, "theirs.png", "png", seed=8)
    async with emulator() as running:
        async with MediaCrushClient(running.base_url) as other:  # on the server before the batch
            await other.upload_file(theirs)
        await _until_uploaded(running, [mine, theirs], tmp_path / "out")
        _, items = await run_batch(running, [mine, theirs], tmp_path / "out", keep_remote=False)
        left = {name.split(".")[0] for name in running.emulator.stored_names()}
    assert [i.stage for i in items] == [Stage.DONE, Stage.DONE]
    assert content_hash(mine.read_bytes()) not in left, "the batch's own upload was left behind"
    assert content_hash(theirs.read_bytes()) in left, "a file that was already there was deleted"
