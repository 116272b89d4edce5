"""The SQLite journal: spec check, transitions and intents committed, reopened as they were."""

from __future__ import annotations

import sqlite3

import pytest

from orchestrator._journal import Journal, JournalError, JournalMismatchError
from orchestrator._service import JobSpec
from orchestrator._stages import IllegalTransitionError, Item, Stage

SPEC = JobSpec("recuro", {"format": "Mp4H264", "filters": ["Noise"], "scale": None})


def _item(n: int = 0) -> Item:
    return Item(key=f"/in/{n}.mov", seq=n, input=f"{n}.mov", output_path=f"/out/{n}.mp4", size=10)


async def test_items_survive_a_reopen(tmp_path):
    """Items and their fields read back exactly after closing and reopening."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED, stage_token="tok")
        await journal.save(item, Stage.UPLOADING)
        await journal.save(item, Stage.UPLOADED, remote_id="f-1")
    async with Journal(path, SPEC) as journal:
        (loaded,) = await journal.load()
    assert loaded.stage is Stage.UPLOADED
    assert loaded.remote_id == "f-1"
    assert loaded.stage_token == "tok"
    assert set(loaded.timings) == {"staged", "uploading", "uploaded"}


async def test_journal_is_wal_and_owner_only(tmp_path):
    """The journal runs in WAL mode and its file is readable by its owner only."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    assert path.stat().st_mode & 0o077 == 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_intents_are_written_and_resolved(tmp_path):
    """Entering UPLOADING/STARTING writes an intent; leaving it records the outcome."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED)
        await journal.save(item, Stage.UPLOADING)
        (open_intent,) = await journal.intents(item.key)
        assert open_intent.kind == "upload"
        assert open_intent.resolved_at is None
        await journal.save(item, Stage.UPLOADED, remote_id="f-9", outcome="adopted")
        await journal.save(item, Stage.READY)
        await journal.save(item, Stage.STARTING)
        upload, start = await journal.intents(item.key)
    assert upload.outcome == "adopted"
    assert upload.remote_id == "f-9"
    assert start.kind == "start"
    assert start.remote_id == "f-9"
    assert start.resolved_at is None


async def test_illegal_transition_is_refused_and_not_applied(tmp_path):
    """A move outside the table raises and changes neither the item nor the row."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        with pytest.raises(IllegalTransitionError):
            await journal.save(item, Stage.RUNNING)
        assert item.stage is Stage.QUEUED
        (loaded,) = await journal.load()
    assert loaded.stage is Stage.QUEUED


async def test_a_journal_of_another_spec_is_refused(tmp_path):
    """Opening (or checking) a journal made for other settings names the difference."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    other = JobSpec("recuro", {"format": "MovProRes4444", "filters": ["Noise"], "scale": None})
    with pytest.raises(JournalMismatchError, match="format: journal has 'Mp4H264'"):
        await Journal.check(path, other)
    with pytest.raises(JournalMismatchError):
        async with Journal(path, other):
            pass
    await Journal.check(path, SPEC)
    await Journal.check(tmp_path / "absent.sqlite", other)


async def test_not_a_journal_is_a_clear_error(tmp_path):
    """A file that is not SQLite raises JournalError."""
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError):
        async with Journal(path, SPEC):
            pass


async def test_adding_is_idempotent_and_concurrent_writes_group(tmp_path):
    """Adding a known key keeps its row; many concurrent saves all land."""
    import anyio

    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        items = [_item(n) for n in range(50)]
        await journal.add(items)
        await journal.save(items[0], Stage.STAGED)
        await journal.add([_item(0)])
        async with anyio.create_task_group() as tg:
            for item in items[1:]:
                tg.start_soon(journal.save, item, Stage.STAGED)
        loaded = await journal.load()
    assert [i.stage for i in loaded] == [Stage.STAGED] * 50


async def test_meta_values_round_trip(tmp_path):
    """Batch-wide facts are stored as JSON."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        assert await journal.get_meta("baseline") is None
        await journal.set_meta("baseline", ["a", "b"])
        assert await journal.get_meta("baseline") == ["a", "b"]


async def test_unknown_fields_are_refused(tmp_path):
    """Only journal columns can be saved."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        with pytest.raises(JournalError, match="not journal fields"):
            await journal.save(item, api_secret="x")


async def test_concurrent_saves_of_one_item_keep_both_changes(tmp_path):
    """A fetch counted while the item's own task commits a transition loses neither change."""
    import anyio

    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED)
        await journal.save(item, Stage.UPLOADING)
        async with anyio.create_task_group() as tg:
            tg.start_soon(journal.save, item, Stage.UPLOADED)
            tg.start_soon(journal.count_fetch, item)
            tg.start_soon(journal.count_fetch, item)
        (loaded,) = await journal.load()
    assert loaded.stage is Stage.UPLOADED
    assert loaded.fetches == 2
