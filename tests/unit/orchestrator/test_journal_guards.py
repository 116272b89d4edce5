"""The journal enforces what the engine promises: terminal is terminal, one run per journal, atomic trash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import anyio
import pytest

from orchestrator._journal import Journal, JournalLockedError, JournalMismatchError, StaleItemError
from orchestrator._service import JobSpec
from orchestrator._stages import Item, Stage

SPEC = JobSpec("recuro", {"format": "Mp4H264"})
_PATH = [Stage.STAGED, Stage.UPLOADING, Stage.UPLOADED, Stage.READY, Stage.STARTING, Stage.RUNNING]
_TAIL = [Stage.RESTORED, Stage.DOWNLOADING, Stage.DOWNLOADED]


def _item(n: int = 0) -> Item:
    return Item(key=f"/in/{n}.mov", seq=n, input=f"{n}.mov", output_path=f"/out/{n}.mp4")


async def _walk(journal: Journal, item: Item, stages: list[Stage]) -> None:
    for stage in stages:
        changes = {"remote_id": "f-1"} if stage is Stage.UPLOADED else {}
        await journal.save(item, stage, **changes)


async def test_a_done_row_refuses_every_change(tmp_path):
    """Once DONE, neither a field change nor a move is applied: StaleItemError, row unchanged."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        await _walk(journal, item, [*_PATH, *_TAIL, Stage.DONE])
        with pytest.raises(StaleItemError):
            await journal.save(item, error_code="Late", error_message="a stale probe")
        with pytest.raises(StaleItemError):
            await journal.count_fetch(item)
        (row,) = await journal.load()
        assert (row.stage, row.error_code, row.fetches) == (Stage.DONE, None, 0)
        await journal.save(item, Stage.QUEUED, reopen=True, remote_id=None)  # a rerun may requeue
        (row,) = await journal.load()
        assert row.stage is Stage.QUEUED


async def test_a_failed_row_is_final_once_its_media_is_deleted(tmp_path):
    """A failed item may still record its media's deletion; after that its row is final."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        await _walk(journal, item, [*_PATH, Stage.FAILED])
        await journal.save(item, remote_deleted=True)
        with pytest.raises(StaleItemError):
            await journal.save(item, error_code="Again")
        parked = _item(1)
        await journal.add([parked])
        await journal.save(parked, Stage.STAGED)
        await journal.save(parked, Stage.UPLOADING)
        await journal.save(parked, Stage.PARKED)
        with pytest.raises(StaleItemError):
            await journal.save(parked, error_message="guess")


async def test_a_change_from_an_outdated_view_is_dropped(tmp_path):
    """Two views of one item: the second to move it acts on a stage that is gone, and is refused."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        first = _item()
        await journal.add([first])
        await journal.save(first, Stage.STAGED)
        (second,) = await journal.load()
        await journal.save(first, Stage.UPLOADING)
        with pytest.raises(StaleItemError, match="uploading"):
            await journal.save(second, Stage.FAILED, error_code="Stale")
        (row,) = await journal.load()
        assert row.stage is Stage.UPLOADING
        assert second.stage is Stage.STAGED, "a refused change is not applied to the object either"


async def test_trash_is_committed_with_the_move(tmp_path):
    """Letting media go puts it in the trash in the same commit; untrash forgets it."""
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        await _walk(journal, item, _PATH[:3])
        await journal.save(item, Stage.STAGED, trash="ingest lost", remote_id=None)
        assert await journal.trash() == ["f-1"]
        (row,) = await journal.load()
        assert row.remote_id is None
        await journal.untrash("f-1")
        assert await journal.trash() == []


async def test_one_run_per_journal_in_this_process(tmp_path):
    """A second open of a journal this process holds fails at once, naming this process."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC):
        with pytest.raises(JournalLockedError, match=f"PID {os.getpid()}"):
            await Journal(path, SPEC).open()
    async with Journal(path, SPEC):  # released on close
        pass


_HOLDER = textwrap.dedent(
    """
    import sys, anyio
    from orchestrator._journal import Journal
    from orchestrator._service import JobSpec

    async def main():
        async with Journal(sys.argv[1], JobSpec("recuro", {"format": "Mp4H264"})):
            print("held", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)

    anyio.run(main)
    """
)


async def test_another_process_holding_the_journal_is_named_and_its_death_frees_it(tmp_path):
    """A journal held by another process is refused with its PID; once it is killed, it opens."""
    path = tmp_path / "j.sqlite"
    async with await anyio.open_process(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as holder:
        assert holder.stdout is not None
        assert (await holder.stdout.receive()).startswith(b"held")
        with pytest.raises(JournalLockedError, match=f"PID {holder.pid}"):
            await Journal(path, SPEC).open()
        holder.kill()
        await holder.wait()
    async with Journal(path, SPEC) as journal:
        assert await journal.load() == []


@pytest.mark.parametrize("directory", ["run #1", "what?", "100%41"])
async def test_the_spec_check_reads_a_journal_whose_path_needs_escaping(tmp_path, directory):
    """`Journal.check` opens the journal itself, whatever characters its path holds (found by the
    mutation-testing work: a raw `file:` URI let '#', '?' or '%' open another file)."""
    path = tmp_path / directory / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    with pytest.raises(JournalMismatchError):
        await Journal.check(path, JobSpec("recuro", {"format": "MovProRes4444"}))


async def test_a_journal_left_empty_by_a_kill_is_checked_and_opened(tmp_path):
    """A run killed after creating the journal file, before SQLite wrote its schema, leaves an empty (or
    cut) file: the rerun's spec check takes it for a new journal, and opening it makes one (found by the
    seeded random kills: the rerun exited 2 with 'no such table: meta', again and again)."""
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"")
    await Journal.check(path, SPEC)
    async with Journal(path, SPEC) as journal:
        assert await journal.load() == []
