"""The journal's promises under failure and cancellation (issue 17), through its public methods only.

- one failed operation in a grouped commit is rolled back whole (its savepoint), and the others commit;
- a save either commits and updates the item object, or does neither, even when its caller is cancelled
  while it waits for the writer or while its commit runs;
- intents are opened and resolved in the same transaction as the move, with the outcome and remote id;
- conditional updates: a change made from an outdated view is dropped, the row left as it was.

A failure in the middle of an operation is made the way a full disk or a corrupt page would make it: a
trigger, installed from a second SQLite connection, aborts the intent insert after the item update ran.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import sqlite3
import time

import anyio
import pytest

from orchestrator._journal import (
    Journal,
    JournalError,
    JournalLockedError,
    JournalMismatchError,
    StaleItemError,
)
from orchestrator._service import JobSpec
from orchestrator._stages import Item, Stage

SPEC = JobSpec("recuro", {"format": "Mp4H264"})


def _item(n: int = 0) -> Item:
    return Item(key=f"/in/{n}.mov", seq=n, input=f"{n}.mov", output_path=f"/out/{n}.mp4", size=n)


def _rows(path) -> dict[str, sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {r["key"]: r for r in conn.execute("SELECT * FROM items")}
    finally:
        conn.close()


def _intents(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT key, kind, remote_id, resolved_at IS NOT NULL, outcome FROM intents ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _fail_intent_inserts(path) -> None:
    """From outside: make every intent insert abort (the statement only; the transaction goes on)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "CREATE TRIGGER no_intents BEFORE INSERT ON intents "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
        conn.commit()
    finally:
        conn.close()


# ------------------------------------------------------------------------------ savepoints


async def test_a_failed_operation_leaves_no_partial_write(tmp_path):
    """The item update ran, the intent insert failed: the update is rolled back with it."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED)
        _fail_intent_inserts(path)
        with pytest.raises(sqlite3.IntegrityError, match="disk says no"):
            await journal.save(item, Stage.UPLOADING)
        assert item.stage is Stage.STAGED  # the object was not changed either
        assert "uploading" not in item.timings
        assert _rows(path)[item.key]["stage"] == "staged"
        assert _intents(path) == []
        # the journal is still usable, and the item can move on by another road
        await journal.save(item, Stage.FAILED, error_code="X")
        assert _rows(path)[item.key]["stage"] == "failed"


async def test_one_failed_operation_does_not_undo_the_others_in_its_commit(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        items = [_item(n) for n in range(6)]
        await journal.add(items)
        for item in items:
            await journal.save(item, Stage.STAGED)
        _fail_intent_inserts(path)
        outcomes: dict[str, str] = {}

        async def move(item: Item) -> None:
            stage = Stage.UPLOADING if item.seq % 2 else Stage.FAILED
            try:
                await journal.save(item, stage, error_code=f"e{item.seq}")
            except sqlite3.IntegrityError:
                outcomes[item.key] = "refused"
            else:
                outcomes[item.key] = "saved"

        async with anyio.create_task_group() as tg:
            for item in items:
                tg.start_soon(move, item)
        rows = _rows(path)
        for item in items:
            if item.seq % 2:
                assert outcomes[item.key] == "refused"
                assert (rows[item.key]["stage"], rows[item.key]["error_code"]) == ("staged", None)
                assert (item.stage, item.error_code) == (Stage.STAGED, None)
            else:
                assert outcomes[item.key] == "saved"
                assert rows[item.key]["stage"] == "failed"
                assert rows[item.key]["error_code"] == f"e{item.seq}"
                assert item.stage is Stage.FAILED


async def test_a_stale_change_in_a_grouped_commit_drops_only_itself(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        a, b = _item(1), _item(2)
        await journal.add([a, b])
        stale = _item(1)  # a second view of `a`, left behind
        await journal.save(a, Stage.STAGED)
        results: dict[str, object] = {}

        async def save(name: str, item: Item, **changes: object) -> None:
            try:
                await journal.save(item, **changes)
            except StaleItemError as exc:
                results[name] = exc
            else:
                results[name] = "ok"

        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(save, "stale", stale, error_code="from-the-past"))
            tg.start_soon(functools.partial(save, "fresh", b, error_code="now"))
        assert isinstance(results["stale"], StaleItemError)
        assert "queued" in str(results["stale"])
        assert "staged" in str(results["stale"])
        assert results["fresh"] == "ok"
        rows = _rows(path)
        assert rows[a.key]["error_code"] is None
        assert rows[b.key]["error_code"] == "now"
        assert stale.error_code is None


# ------------------------------------------------------------------------------ cancellation


def _hold_write_lock(path) -> sqlite3.Connection:
    """Another connection takes SQLite's write lock: the journal's next commit waits for it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


async def test_a_save_cancelled_before_it_starts_is_all_or_nothing(tmp_path):
    """The first save's commit waits on SQLite; a second save starts already cancelled and waits behind
    it. Afterwards the journal and the objects agree for every item: a cancelled save never commits
    later behind its caller's back."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        first, second, third = _item(1), _item(2), _item(3)
        await journal.add([first, second, third])
        blocker = _hold_write_lock(path)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(journal.save, first, Stage.STAGED)
                await anyio.wait_all_tasks_blocked()

                async def cancelled_save() -> None:
                    with anyio.CancelScope() as scope:
                        scope.cancel()
                        await journal.save(second, Stage.STAGED)

                tg.start_soon(cancelled_save)
                await anyio.wait_all_tasks_blocked()
                blocker.execute("COMMIT")
        finally:
            blocker.close()
        await journal.save(
            third, Stage.STAGED
        )  # a later commit: nothing of `second` may ride on it
        rows = _rows(path)
        for item in (first, second, third):
            assert rows[item.key]["stage"] == item.stage.value, item.key
        assert first.stage is Stage.STAGED
        assert third.stage is Stage.STAGED


async def test_a_save_cancelled_while_queued_behind_another(tmp_path):
    """The cancel arrives while the save is queued (not yet running): the same all-or-nothing."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        first, second, third = _item(1), _item(2), _item(3)
        await journal.add([first, second, third])
        blocker = _hold_write_lock(path)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(journal.save, first, Stage.STAGED)
                await anyio.wait_all_tasks_blocked()
                scope = anyio.CancelScope()

                async def second_save() -> None:
                    with scope:
                        await journal.save(second, Stage.STAGED, error_code="x")

                tg.start_soon(second_save)
                await anyio.wait_all_tasks_blocked()  # queued behind the first
                scope.cancel()
                await anyio.wait_all_tasks_blocked()
                blocker.execute("COMMIT")
        finally:
            blocker.close()
        await journal.save(third, Stage.STAGED)
        rows = _rows(path)
        for item in (first, second, third):
            assert rows[item.key]["stage"] == item.stage.value, item.key
            assert rows[item.key]["error_code"] == item.error_code, item.key


async def test_a_save_whose_commit_is_running_finishes_despite_a_cancel(tmp_path):
    """Once the commit started, the cancel waits for it: the item and the row both move."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        blocker = _hold_write_lock(path)
        try:
            scope = anyio.CancelScope()

            async def save() -> None:
                with scope:
                    await journal.save(item, Stage.STAGED)
                    await anyio.sleep(3600)  # reached only if the save returned

            async with anyio.create_task_group() as tg:
                tg.start_soon(save)
                await anyio.wait_all_tasks_blocked()  # its commit waits on SQLite
                scope.cancel()
                await anyio.wait_all_tasks_blocked()
                blocker.execute("COMMIT")
        finally:
            blocker.close()
        assert item.stage is Stage.STAGED
        assert _rows(path)[item.key]["stage"] == "staged"


# ------------------------------------------------------------------------------ intents and fields


async def test_intents_open_and_resolve_with_the_move(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED)
        assert await journal.save(item, Stage.UPLOADING) is Stage.STAGED
        assert _intents(path) == [(item.key, "upload", None, 0, None)]
        await journal.save(item, Stage.UPLOADED, remote_id="f-1")
        assert _intents(path) == [(item.key, "upload", "f-1", 1, "uploaded")]
        await journal.save(item, Stage.STARTING)  # straight from UPLOADED
        assert _intents(path)[1] == (item.key, "start", "f-1", 0, None)
        await journal.save(item, Stage.PARKED, outcome="ambiguous")
        assert _intents(path)[1] == (item.key, "start", "f-1", 1, "ambiguous")
        intents = await journal.intents(item.key)
        assert [(i.kind, i.outcome) for i in intents] == [
            ("upload", "uploaded"),
            ("start", "ambiguous"),
        ]
        assert all(i.resolved_at is not None and i.resolved_at >= i.created_at for i in intents)
        assert await journal.intents("another") == []
        assert [i.key for i in await journal.intents()] == [item.key, item.key]


async def test_a_resolved_intent_keeps_its_remote_id_when_the_answer_has_none(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED)
        await journal.save(item, Stage.UPLOADING)
        await journal.save(item, Stage.UPLOADED, remote_id="f-9")
        await journal.save(item, Stage.STARTING)
        await journal.save(item, Stage.READY)  # reconciliation: not started
        assert _intents(path)[1] == (item.key, "start", "f-9", 1, "ready")


async def test_a_save_without_a_move_touches_no_intent_and_no_timing(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED)
        await journal.save(item, Stage.UPLOADING)
        timings = dict(item.timings)
        assert await journal.save(item, Stage.UPLOADING, bytes_on_disk=5) is Stage.UPLOADING
        assert await journal.save(item, bytes_on_disk=6) is Stage.UPLOADING
        assert item.timings == timings
        assert _intents(path) == [(item.key, "upload", None, 0, None)]
        assert _rows(path)[item.key]["bytes_on_disk"] == 6


async def test_every_field_round_trips(tmp_path):
    path = tmp_path / "j.sqlite"
    item = _item(7)
    async with Journal(path, SPEC) as journal:
        await journal.add([item])
        await journal.save(
            item,
            Stage.STAGED,
            spec_fingerprint="fp",
            stage_token="tok",
            restored_url="https://x/y",
            bytes_on_disk=3,
            output_size=9,
            sha256="ab",
            attempts=2,
            error_code="E",
            error_message="M",
            output_path="/out/other.mp4",
            size=11,
        )
        await journal.save(item, Stage.UPLOADING)
        await journal.save(
            item, Stage.UPLOADED, remote_id="r", remote_deleted=True, remote_shared=True
        )
        await journal.count_fetch(item)
        await journal.count_fetch(item)
    async with Journal(path, SPEC) as journal:
        (loaded,) = await journal.load()
    for field in (
        "key",
        "seq",
        "input",
        "output_path",
        "stage",
        "size",
        "spec_fingerprint",
        "stage_token",
        "remote_id",
        "remote_deleted",
        "remote_shared",
        "restored_url",
        "bytes_on_disk",
        "output_size",
        "sha256",
        "attempts",
        "error_code",
        "error_message",
        "fetches",
        "timings",
    ):
        assert getattr(loaded, field) == getattr(item, field), field
    assert loaded.fetches == 2
    assert loaded.remote_deleted is True
    assert loaded.remote_shared is True
    assert set(loaded.timings) == {"staged", "uploading", "uploaded"}


async def test_timings_record_when_each_stage_was_entered(tmp_path):
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        before = time.time()
        await journal.save(item, Stage.STAGED)
        after = time.time()
        assert before <= item.timings["staged"] <= after
        (loaded,) = await journal.load()
        assert loaded.timings == item.timings


async def test_load_returns_items_in_batch_order(tmp_path):
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        await journal.add([_item(3), _item(1), _item(2)])
        await journal.add([_item(0)])
        assert [i.seq for i in await journal.load()] == [0, 1, 2, 3]


async def test_count_fetch_counts_and_refuses_final_rows(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.count_fetch(item)
        assert item.fetches == 1
        assert _rows(path)[item.key]["fetches"] == 1
        await journal.save(item, Stage.FAILED)
        with pytest.raises(StaleItemError):
            await journal.count_fetch(item)
        assert item.fetches == 1
        assert _rows(path)[item.key]["fetches"] == 1


async def test_unknown_fields_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        for field in ("key", "seq", "input", "bogus"):
            with pytest.raises(JournalError, match=field):
                await journal.save(item, Stage.STAGED, **{field: "x"})
        assert _rows(path)[item.key]["stage"] == "queued"
        assert item.stage is Stage.QUEUED


async def test_meta_values(tmp_path):
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        assert await journal.get_meta("nothing") is None
        await journal.set_meta("a", {"x": [1, 2]})
        await journal.set_meta("a", {"x": [3]})
        assert await journal.get_meta("a") == {"x": [3]}


async def test_a_closed_journal_refuses_work(tmp_path):
    journal = Journal(tmp_path / "j.sqlite", SPEC)
    with pytest.raises(JournalError, match="not open"):
        await journal.load()
    async with journal:
        with pytest.raises(JournalError, match="already open"):
            await journal.open()
    with pytest.raises(JournalError, match="not open"):
        await journal.add([_item()])
    await journal.aclose()  # closing twice is fine


async def test_a_transaction_sqlite_aborts_fails_the_write_with_a_journal_error(tmp_path):
    """A failure that ends the whole transaction (not only the statement): the write is a JournalError,
    nothing of it is applied, and the journal goes on working."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED)
        breaker = sqlite3.connect(path)
        breaker.execute(
            "CREATE TRIGGER no_intents BEFORE INSERT ON intents "
            "BEGIN SELECT RAISE(ROLLBACK, 'the disk is gone'); END"
        )
        breaker.commit()
        breaker.close()
        with pytest.raises(JournalError, match="journal write failed"):
            await journal.save(item, Stage.UPLOADING)
        assert item.stage is Stage.STAGED
        assert _rows(path)[item.key]["stage"] == "staged"
        await journal.save(item, error_code="still writable")
        assert _rows(path)[item.key]["error_code"] == "still writable"


# ------------------------------------------------------------------------------ the file and its spec


def _meta(path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT key, value FROM meta"))
    finally:
        conn.close()


async def test_a_new_journal_records_its_spec(tmp_path):
    path = tmp_path / "j.sqlite"
    before = time.time()
    async with Journal(path, SPEC) as journal:
        assert await journal.get_meta("schema_version") == "1"
        assert await journal.get_meta("spec") == SPEC.to_json()
        assert await journal.get_meta("fingerprint") == SPEC.fingerprint
        assert before <= await journal.get_meta("created_at") <= time.time()
        assert await journal.get_meta("holder") == f"PID {os.getpid()}"
        assert journal.path == path
        assert journal.spec is SPEC
        assert repr(journal) == f"<orchestrator.Journal {str(path)!r} spec={SPEC.fingerprint}>"


async def test_meta_is_stored_as_canonical_json(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        await journal.set_meta("m", {"b": 2, "a": [1, {"d": 4, "c": 3}]})
    assert _meta(path)["m"] == '{"a": [1, {"c": 3, "d": 4}], "b": 2}'


async def test_another_spec_is_refused_naming_every_difference(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, JobSpec("recuro", {"format": "Mp4H264", "gone": 1, "same": 2})):
        pass
    other = JobSpec("mediacrush", {"format": "MovProRes4444", "new": 3, "same": 2})
    expected = (
        f"the journal {path} belongs to a different job spec (service 'recuro' != 'mediacrush'; "
        "format: journal has 'Mp4H264', this run asks 'MovProRes4444'; "
        "gone: journal has 1, this run asks None; new: journal has None, this run asks 3); "
        "use another --journal (or --out) for a new job, or rerun with the original settings"
    )
    with pytest.raises(JournalMismatchError) as info:
        async with Journal(path, other):
            pass
    assert str(info.value) == expected
    with pytest.raises(JournalMismatchError) as info:
        await Journal.check(path, other)
    assert str(info.value) == expected
    await Journal.check(path, JobSpec("recuro", {"format": "Mp4H264", "gone": 1, "same": 2}))


async def test_check_of_a_missing_journal_creates_nothing(tmp_path):
    await Journal.check(tmp_path / "none.sqlite", SPEC)
    assert list(tmp_path.iterdir()) == []


async def test_check_of_a_file_that_is_not_a_journal(tmp_path):
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"not a database at all, " * 100)
    with pytest.raises(JournalError) as info:
        await Journal.check(path, SPEC)
    assert str(info.value).startswith(f"{path} is not a usable journal: ")
    with pytest.raises(JournalError) as info:
        async with Journal(path, SPEC):
            pass
    assert str(info.value).startswith(f"{path} is not a usable journal: ")


@pytest.mark.parametrize("directory", ["run #1", "what?", "100%41"])
async def test_check_of_a_journal_whose_path_needs_escaping(tmp_path, directory):
    path = tmp_path / directory / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    with pytest.raises(JournalMismatchError):
        await Journal.check(path, JobSpec("recuro", {"format": "MovProRes4444"}))


async def test_a_journal_of_an_earlier_release_is_migrated(tmp_path):
    """A journal written before `remote_shared` existed opens, and its items read as not shared."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        await journal.add([_item()])
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE items DROP COLUMN remote_shared")
    conn.commit()
    conn.close()
    async with Journal(path, SPEC) as journal:
        (item,) = await journal.load()
        assert item.remote_shared is False
        await journal.save(item, remote_shared=True)
    async with Journal(path, SPEC) as journal:
        (item,) = await journal.load()
        assert item.remote_shared is True


async def test_the_journal_directory_is_created(tmp_path):
    path = tmp_path / "a" / "b" / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    assert path.is_file()


async def test_a_journal_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    path = tmp_path / "file" / "j.sqlite"
    with pytest.raises(JournalError) as info:
        async with Journal(path, SPEC):
            pass
    assert str(info.value) in (
        f"cannot open the journal {path}: File exists",
        f"cannot open the journal {path}: Not a directory",
    )


# ------------------------------------------------------------------------------ one run per journal


async def test_a_second_open_in_this_process_is_refused_and_harmless(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as first:
        item = _item()
        await first.add([item])
        with pytest.raises(JournalLockedError) as info:
            async with Journal(path, SPEC):
                pass
        assert info.value.holder == f"PID {os.getpid()}, this process"
        assert str(info.value) == (
            f"the journal {path} is in use by another run (PID {os.getpid()}, this process); "
            "wait for it to end, or stop it (a killed run releases the journal at once)"
        )
        await first.save(item, Stage.STAGED)  # the first run is unharmed
    async with Journal(path, SPEC) as again:
        assert [i.stage for i in await again.load()] == [Stage.STAGED]


async def test_a_holder_that_has_not_written_yet_is_named_as_starting(tmp_path):
    path = tmp_path / "j.sqlite"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(JournalLockedError) as info:
            async with Journal(path, SPEC):
                pass
        assert info.value.holder == "a process that is starting"
        assert str(path) in str(info.value)
    finally:
        os.close(fd)
    async with Journal(path, SPEC):
        pass


async def test_a_holder_names_itself(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        await journal.set_meta("holder", "PID 4242")
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(JournalLockedError) as info:
            async with Journal(path, SPEC):
                pass
        assert info.value.holder == "PID 4242"
    finally:
        os.close(fd)


async def test_close_under_cancellation_still_releases_the_journal(tmp_path):
    path = tmp_path / "j.sqlite"
    journal = Journal(path, SPEC)
    await journal.open()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await journal.aclose()
    async with Journal(path, SPEC):
        pass


async def test_a_failed_open_leaves_nothing_held(tmp_path):
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"garbage " * 100)
    journal = Journal(path, SPEC)
    with pytest.raises(JournalError):
        await journal.open()
    await journal.aclose()
    path.unlink()
    async with journal:
        await journal.add([_item()])


async def test_the_open_and_closed_errors_are_exact(tmp_path):
    journal = Journal(tmp_path / "j.sqlite", SPEC)
    with pytest.raises(JournalError) as info:
        await journal.load()
    assert str(info.value) == "the journal is not open"
    async with journal:
        with pytest.raises(JournalError) as info:
            await journal.open()
        assert str(info.value) == "the journal is already open"


# ------------------------------------------------------------------------------ commits that fail


class _FailingCommit:
    """The journal's connection, whose next COMMIT fails the way a full disk makes it fail."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.failures = 1

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


async def test_a_failed_commit_is_rolled_back_and_reported(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        real = journal._conn
        journal._conn = _FailingCommit(real)  # type: ignore[assignment]
        try:
            with pytest.raises(JournalError) as info:
                await journal.save(item, Stage.STAGED, error_code="lost")
            assert str(info.value) == "journal write failed: database or disk is full"
            assert item.stage is Stage.QUEUED
            assert not real.in_transaction  # rolled back, not left open
            await journal.save(item, Stage.STAGED)  # the next write works
        finally:
            journal._conn = real
        rows = _rows(path)
        assert (rows[item.key]["stage"], rows[item.key]["error_code"]) == ("staged", None)


# ------------------------------------------------------------------------------ conditional updates


async def test_a_change_to_a_row_that_vanished_says_so(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM items")
        conn.commit()
        conn.close()
        with pytest.raises(StaleItemError) as info:
            await journal.save(item, Stage.STAGED)
        assert (
            str(info.value)
            == f"item {item.key!r} is gone in the journal; a change for queued dropped"
        )


async def test_count_fetch_on_a_final_row_says_so(tmp_path):
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.FAILED)
        with pytest.raises(StaleItemError) as info:
            await journal.count_fetch(item)
        assert str(info.value) == f"item {item.key!r} is final; a fetch not counted"


@pytest.mark.parametrize(
    ("remote", "trash", "trashed"),
    [
        ({"remote_id": "f-1"}, "replaced", ["f-1"]),
        ({"remote_id": "f-1"}, None, []),
        ({}, "replaced", []),
        ({"remote_id": "f-1", "remote_deleted": True}, "replaced", []),
        ({"remote_id": "f-1", "remote_shared": True}, "replaced", []),
    ],
    ids=["owned", "no-trash-asked", "no-media", "deleted", "shared"],
)
async def test_only_owned_media_goes_to_the_trash(tmp_path, remote, trash, trashed):
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        item = _item()
        await journal.add([item])
        await journal.save(item, Stage.STAGED, **remote)
        await journal.save(item, Stage.FAILED, trash=trash)
        assert await journal.trash() == trashed
        for remote_id in trashed:
            await journal.untrash(remote_id)
        assert await journal.trash() == []


async def test_the_trash_keeps_its_order(tmp_path):
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        items = [_item(n) for n in range(3)]
        await journal.add(items)
        for item in reversed(items):
            await journal.save(item, Stage.STAGED, remote_id=f"f-{item.seq}")
            await journal.save(item, Stage.FAILED, trash="why")
        assert await journal.trash() == ["f-2", "f-1", "f-0"]
        await journal.untrash("f-1")
        await journal.untrash("f-9")  # unknown: nothing happens
        assert await journal.trash() == ["f-2", "f-0"]


async def test_intent_ids_grow(tmp_path):
    async with Journal(tmp_path / "j.sqlite", SPEC) as journal:
        items = [_item(n) for n in range(3)]
        await journal.add(items)
        for item in items:
            await journal.save(item, Stage.STAGED)
            await journal.save(item, Stage.UPLOADING)
        ids = [i.id for i in await journal.intents()]
        assert ids == sorted(ids)
        assert len(set(ids)) == 3
        assert all(isinstance(i, int) for i in ids)


async def test_settings_differences_alone_do_not_blame_the_service(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    with pytest.raises(JournalMismatchError) as info:
        await Journal.check(path, JobSpec("recuro", {"format": "MovProRes4444"}))
    assert "service" not in str(info.value)
    assert "(format: journal has 'Mp4H264', this run asks 'MovProRes4444')" in str(info.value)


async def test_a_stored_spec_without_settings_is_compared_setting_by_setting(tmp_path):
    """A journal whose spec was written without settings (another tool, an older release)."""
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'spec'", ('"{\\"service\\":\\"recuro\\"}"',)
    )
    conn.commit()
    conn.close()
    with pytest.raises(JournalMismatchError) as info:
        await Journal.check(path, SPEC)
    assert "(format: journal has None, this run asks 'Mp4H264')" in str(info.value)


async def test_check_of_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(JournalError) as info:
        await Journal.check(tmp_path, SPEC)
    assert str(info.value).startswith(f"cannot open the journal {tmp_path}: ")


async def test_closing_a_journal_never_opened_is_fine(tmp_path):
    await Journal(tmp_path / "j.sqlite", SPEC).aclose()
    assert list(tmp_path.iterdir()) == []


async def test_timings_are_stored_as_canonical_json(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC) as journal:
        item = _item()
        await journal.add([item])
        for stage in (Stage.STAGED, Stage.UPLOADING, Stage.UPLOADED):  # "uploaded" < "uploading"
            await journal.save(item, stage)
    stored = _rows(path)[item.key]["timings"]
    assert list(json.loads(stored)) == ["staged", "uploaded", "uploading"]
    assert stored == json.dumps(item.timings, sort_keys=True)


async def test_check_of_an_empty_file_is_a_new_journal(tmp_path):
    """A run killed between creating the file and writing the schema leaves it empty: not an error."""
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"")
    await Journal.check(path, SPEC)
    async with Journal(path, SPEC) as journal:
        assert await journal.get_meta("spec") == SPEC.to_json()


async def test_check_of_a_journal_without_a_spec_row_passes(tmp_path):
    path = tmp_path / "j.sqlite"
    async with Journal(path, SPEC):
        pass
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM meta WHERE key = 'spec'")
    conn.commit()
    conn.close()
    await Journal.check(path, JobSpec("recuro", {"format": "MovProRes4444"}))
