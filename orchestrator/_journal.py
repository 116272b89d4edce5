"""The batch journal: SQLite in WAL mode, one row per item, intents before non-idempotent calls.

Rules (SPEC 5, ANCHORS 6):
- every stage transition is committed before the engine makes the next remote call;
- before UploadMedia or StartJob an *intent* row is written in the same transaction as the move to
  `UPLOADING`/`STARTING`; the answer resolves it. An open intent after a crash means "outcome unknown";
- a journal belongs to one job spec (service + settings): opening it for another is refused;
- it never stores secrets (no API key or secret, no Authorization header).

All SQLite work runs on one worker thread at a time (`anyio.to_thread` with a `CapacityLimiter(1)`), on one
connection. Commits are grouped: writes that arrive while a commit is running share the next transaction.
Every public write is shielded from cancellation, so a cancelled caller never leaves a half-known commit.
`synchronous=NORMAL` in WAL mode survives any crash of the application (`kill -9`); only a power loss may
lose the last commits.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.to_thread
import attrs

from ._service import JobSpec
from ._stages import INTENT_STAGES, Item, Stage, check_transition

__all__ = [
    "Intent",
    "Journal",
    "JournalError",
    "JournalLockedError",
    "JournalMismatchError",
    "StaleItemError",
]

log = logging.getLogger("orchestrator")

SCHEMA_VERSION: Final = "1"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    input TEXT NOT NULL,
    output_path TEXT NOT NULL,
    stage TEXT NOT NULL,
    size INTEGER,
    spec_fingerprint TEXT NOT NULL,
    stage_token TEXT,
    remote_id TEXT,
    remote_deleted INTEGER NOT NULL DEFAULT 0,
    remote_shared INTEGER NOT NULL DEFAULT 0,
    restored_url TEXT,
    bytes_on_disk INTEGER NOT NULL DEFAULT 0,
    output_size INTEGER,
    sha256 TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    fetches INTEGER NOT NULL DEFAULT 0,
    timings TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    remote_id TEXT,
    created_at REAL NOT NULL,
    resolved_at REAL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS intents_key ON intents (key);
CREATE TABLE IF NOT EXISTS trash (
    remote_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

# Item fields stored as columns, in table order.
_COLUMNS: Final = (
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
)
_MUTABLE: Final = frozenset(_COLUMNS) - {"key", "seq", "input"}
# built from the constant column list above, never from input
_INSERT: Final = (
    f"INSERT INTO items ({', '.join(_COLUMNS)}, updated_at) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?) ON CONFLICT(key) DO "
)
_INTENT_KIND: Final = {Stage.UPLOADING: "upload", Stage.STARTING: "start"}


class JournalError(Exception):
    """The journal cannot be opened or written."""


class JournalMismatchError(JournalError):
    """The journal was created for a different job spec; reusing it would mix two batches."""


class JournalLockedError(JournalError):
    """Another process holds the journal: two batches on one journal would undo each other's work."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(
            f"the journal {path} is in use by another run ({holder}); wait for it to end, or stop it "
            "(a killed run releases the journal at once)"
        )
        self.holder = holder


class StaleItemError(Exception):
    """A change of an item that has moved on (finished, or moved by another task): dropped, not applied.

    Not a `JournalError`: the journal is fine; the caller acted on an outdated view of the item.
    """


# The row may change only while the item is live: done, parked, and failed-with-nothing-left-to-delete
# rows are final (SPEC 10, "terminal is terminal"); only `reopen=True` (a rerun requeueing it) may move them.
_LIVE_ROW: Final = (
    "NOT (stage IN ('done', 'parked') OR (stage = 'failed' AND "
    "(remote_id IS NULL OR remote_deleted = 1 OR remote_shared = 1)))"
)


@attrs.frozen
class Intent:
    """One recorded intent: about to call UploadMedia (`upload`) or StartJob (`start`) for an item."""

    id: int
    key: str
    kind: str
    remote_id: str | None
    created_at: float
    resolved_at: float | None
    outcome: str | None


def _column(name: str, value: Any) -> Any:
    if name == "stage":
        return Stage(value).value
    if name in ("remote_deleted", "remote_shared"):
        return int(bool(value))
    if name == "timings":
        return json.dumps(value, sort_keys=True)
    return value


def _row(item: Item, now: float) -> tuple[Any, ...]:
    return (*(_column(c, getattr(item, c)) for c in _COLUMNS), now)


def _item_from_row(row: sqlite3.Row) -> Item:
    return Item(
        key=row["key"],
        seq=row["seq"],
        input=row["input"],
        output_path=row["output_path"],
        stage=Stage(row["stage"]),
        size=row["size"],
        spec_fingerprint=row["spec_fingerprint"],
        stage_token=row["stage_token"],
        remote_id=row["remote_id"],
        remote_deleted=bool(row["remote_deleted"]),
        remote_shared=bool(row["remote_shared"]),
        restored_url=row["restored_url"],
        bytes_on_disk=row["bytes_on_disk"],
        output_size=row["output_size"],
        sha256=row["sha256"],
        attempts=row["attempts"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        fetches=row["fetches"],
        timings=json.loads(row["timings"]),
    )


_Op = Callable[[sqlite3.Connection], Any]


@attrs.define(eq=False)
class _Pending:
    op: _Op
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class Journal:
    """The SQLite journal of one batch (async context manager).

    `async with Journal(path, spec) as journal:` creates the file (mode 0600) or reopens it, refusing a
    journal of another spec with `JournalMismatchError`.

    Attributes:
        wall: the wall clock that stamps the items' `timings` (seconds; `time.time` unless a test runs
            the engine on virtual time).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        spec: JobSpec,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._spec = spec
        self.wall = wall
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._lock = anyio.Lock()
        self._queue: list[_Pending] = []
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"<orchestrator.Journal {str(self._path)!r} spec={self._spec.fingerprint}>"

    @property
    def path(self) -> Path:
        """Where the journal lives."""
        return self._path

    @property
    def spec(self) -> JobSpec:
        """The job spec the journal belongs to."""
        return self._spec

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open (or create) the journal and check its spec."""
        if self._conn is not None:
            raise JournalError("the journal is already open")
        # the lock first: a second run learns it is second before it reads or writes anything
        self._lock_fd = await anyio.to_thread.run_sync(_take_lock, self._path)
        try:
            self._conn = await anyio.to_thread.run_sync(self._open_sync, limiter=self._limiter)
        except BaseException:
            _release_lock(self._path, self._lock_fd)
            self._lock_fd = None
            raise
        await self.set_meta("holder", f"PID {os.getpid()}")

    async def aclose(self) -> None:
        """Close the connection (a WAL checkpoint happens on close)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(conn.close, limiter=self._limiter)
        lock_fd, self._lock_fd = self._lock_fd, None
        if lock_fd is not None:  # after SQLite closed its own descriptors
            _release_lock(self._path, lock_fd)

    @staticmethod
    async def check(path: str | os.PathLike[str], spec: JobSpec) -> None:
        """Raise `JournalMismatchError` if a journal exists at `path` for another spec (read-only)."""
        await anyio.to_thread.run_sync(_check_spec_sync, Path(path), spec)

    def _open_sync(self) -> sqlite3.Connection:
        # (the file exists: `_take_lock` created it owner-only before SQLite opens it)
        try:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {self._path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            _migrate(conn)
            _check_or_write_spec(conn, self._path, self._spec)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{self._path} is not a usable journal: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    # ------------------------------------------------------------------ the one writer

    async def _run(self, op: _Op) -> Any:
        """Run `op(conn)` inside a transaction on the worker thread, grouped with concurrent writes."""
        if self._conn is None:
            raise JournalError("the journal is not open")
        pending = _Pending(op)
        self._queue.append(pending)
        with anyio.CancelScope(shield=True):
            async with self._lock:
                if not pending.done:
                    batch, self._queue = self._queue, []
                    await anyio.to_thread.run_sync(self._apply, batch, limiter=self._limiter)
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _apply(self, batch: Sequence[_Pending]) -> None:
        conn = self._conn
        assert conn is not None  # noqa: S101 - checked by _run
        try:
            conn.execute("BEGIN IMMEDIATE")
            for pending in batch:
                conn.execute("SAVEPOINT op")
                try:
                    pending.result = pending.op(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    pending.error = exc
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = JournalError(f"journal write failed: {exc}")
            for pending in batch:
                pending.error = error
        finally:
            for pending in batch:
                pending.done = True

    # ------------------------------------------------------------------ items

    async def load(self) -> list[Item]:
        """Every item of the journal, in batch order."""

        def op(conn: sqlite3.Connection) -> list[Item]:
            rows = conn.execute("SELECT * FROM items ORDER BY seq").fetchall()
            return [_item_from_row(row) for row in rows]

        items: list[Item] = await self._run(op)
        return items

    async def add(self, items: Iterable[Item]) -> None:
        """Insert new items; a key already in the journal is left as it is."""
        now = self.wall()
        rows = [_row(item, now) for item in items]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(_INSERT + "NOTHING", rows)

        await self._run(op)

    async def save(
        self,
        item: Item,
        stage: Stage | None = None,
        *,
        reopen: bool = False,
        trash: str | None = None,
        **changes: Any,
    ) -> Stage:
        """Commit a transition (and/or field changes) of `item`, then apply it to the object.

        Returns the old stage. The update is conditional: it applies only if the row still stands where
        `item` says (its stage) and is not final (done, parked, failed with its media deleted); otherwise
        nothing changes and `StaleItemError` is raised. `reopen=True` lets a rerun requeue a final row.
        `trash="reason"` moves the item's current remote media to the trash in the same commit: the item
        forgets it, and the batch deletes it (`trash()`, `untrash()`), even after a crash in between.
        Moving into `UPLOADING`/`STARTING` also writes the intent row; moving out of them resolves it with
        the outcome `changes.pop("outcome")` or the new stage's name.
        """
        unknown = set(changes) - _MUTABLE - {"outcome"}
        if unknown:
            raise JournalError(f"not journal fields: {sorted(unknown)}")
        old = item.stage
        outcome = changes.pop("outcome", None)
        now = self.wall()
        if stage is not None and stage is not old:
            check_transition(old, stage)
            changes["stage"] = stage
            changes["timings"] = {**item.timings, stage.value: now}
        # only the changed columns: another task may save other fields of the same item meanwhile
        names = sorted(changes)
        assignments = ", ".join(f"{name} = ?" for name in (*names, "updated_at"))
        guard = "" if reopen else f" AND {_LIVE_ROW}"
        update = f"UPDATE items SET {assignments} WHERE key = ? AND stage = ?{guard}"  # noqa: S608
        values = (*(_column(n, changes[n]) for n in names), now, item.key, old.value)
        new_stage = stage if stage is not None else old
        opening = new_stage in INTENT_STAGES and new_stage is not old
        closing = old in INTENT_STAGES and new_stage is not old
        remote_id = changes.get("remote_id", item.remote_id)
        doomed = item.remote_id if trash is not None and item.owns_remote else None

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(update, values).rowcount != 1:
                row = conn.execute("SELECT stage FROM items WHERE key = ?", (item.key,)).fetchone()
                where = "gone" if row is None else row["stage"]
                raise StaleItemError(
                    f"item {item.key!r} is {where} in the journal; a change for {old.value} dropped"
                )
            if closing:
                conn.execute(
                    "UPDATE intents SET resolved_at = ?, outcome = ?, remote_id = COALESCE(?, remote_id)"
                    " WHERE key = ? AND resolved_at IS NULL",
                    (now, outcome or new_stage.value, remote_id, item.key),
                )
            if opening:
                conn.execute(
                    "INSERT INTO intents (key, kind, remote_id, created_at) VALUES (?, ?, ?, ?)",
                    (item.key, _INTENT_KIND[new_stage], remote_id, now),
                )
            if doomed is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO trash (remote_id, key, reason, created_at) VALUES (?, ?, ?, ?)",
                    (doomed, item.key, trash, now),
                )

        await self._run(op)
        for name, value in changes.items():
            setattr(item, name, value)
        return old

    async def count_fetch(self, item: Item) -> None:
        """The service started fetching the item's staged file: one more piece of upload evidence."""
        now = self.wall()

        def op(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                f"UPDATE items SET fetches = fetches + 1, updated_at = ? WHERE key = ? AND {_LIVE_ROW}",  # noqa: S608
                (now, item.key),
            )
            if cursor.rowcount != 1:
                raise StaleItemError(f"item {item.key!r} is final; a fetch not counted")

        await self._run(op)
        item.fetches += 1

    async def intents(self, key: str | None = None) -> list[Intent]:
        """The intents recorded (for one item, or all), oldest first."""

        def op(conn: sqlite3.Connection) -> list[Intent]:
            sql = "SELECT * FROM intents"
            args: tuple[str, ...] = ()
            if key is not None:
                sql += " WHERE key = ?"
                args = (key,)
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
            return [
                Intent(
                    id=r["id"],
                    key=r["key"],
                    kind=r["kind"],
                    remote_id=r["remote_id"],
                    created_at=r["created_at"],
                    resolved_at=r["resolved_at"],
                    outcome=r["outcome"],
                )
                for r in rows
            ]

        intents: list[Intent] = await self._run(op)
        return intents

    async def trash(self) -> list[str]:
        """Remote ids the batch owns and must still delete (media its items let go of), oldest first."""

        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT remote_id FROM trash ORDER BY created_at").fetchall()
            return [row["remote_id"] for row in rows]

        ids: list[str] = await self._run(op)
        return ids

    async def untrash(self, remote_id: str) -> None:
        """The media `remote_id` is deleted: forget it."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM trash WHERE remote_id = ?", (remote_id,))

        await self._run(op)

    # ------------------------------------------------------------------ batch-wide facts

    async def get_meta(self, name: str) -> Any:
        """A JSON value stored for the batch (None when absent)."""

        def op(conn: sqlite3.Connection) -> Any:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
            return None if row is None else json.loads(row["value"])

        return await self._run(op)

    async def set_meta(self, name: str, value: Any) -> None:
        """Store a JSON value for the batch."""
        text = json.dumps(value, sort_keys=True)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (name, text),
            )

        await self._run(op)


# journals this process holds: a second open of one of them must fail without touching the file, since
# closing any descriptor of a file drops the POSIX locks SQLite's connection holds on it
_HELD: set[str] = set()


def _take_lock(path: Path) -> int:
    """Hold an exclusive OS lock on the journal for the whole run; `JournalLockedError` names the holder.

    `flock` locks belong to the open file: the kernel releases them when the process dies, however it dies,
    so a killed run never leaves a stale lock behind. (They are independent of the POSIX locks SQLite uses.)
    """
    held = str(path.resolve())
    if held in _HELD:
        raise JournalLockedError(path, f"PID {os.getpid()}, this process")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise JournalError(f"cannot open the journal {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLockedError(path, _holder(path)) from None
    except BaseException:
        os.close(fd)
        raise
    _HELD.add(held)
    return fd


def _release_lock(path: Path, fd: int) -> None:
    _HELD.discard(str(path.resolve()))
    os.close(fd)


def _holder(path: Path) -> str:
    """Who holds the journal, as the holder recorded it (best effort, read-only)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'holder'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        row = None
    return str(json.loads(row[0])) if row is not None else "a process that is starting"


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a journal written by an earlier release up to this schema (columns added since)."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(items)")}
    if "remote_shared" not in columns:
        conn.execute("ALTER TABLE items ADD COLUMN remote_shared INTEGER NOT NULL DEFAULT 0")


def _check_or_write_spec(conn: sqlite3.Connection, path: Path, spec: JobSpec) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
    if row is None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                ("schema_version", json.dumps(SCHEMA_VERSION)),
                ("spec", json.dumps(spec.to_json())),
                ("fingerprint", json.dumps(spec.fingerprint)),
                ("created_at", json.dumps(time.time())),
            ],
        )
        conn.execute("COMMIT")
        return
    _compare_spec(path, json.loads(row["value"]), spec)


def _compare_spec(path: Path, stored_json: str, spec: JobSpec) -> None:
    if stored_json == spec.to_json():
        return
    stored = json.loads(stored_json)
    wanted = json.loads(spec.to_json())
    differences = []
    if stored.get("service") != wanted["service"]:
        differences.append(f"service {stored.get('service')!r} != {wanted['service']!r}")
    old_settings, new_settings = stored.get("settings", {}), wanted["settings"]
    differences.extend(
        f"{name}: journal has {old_settings.get(name)!r}, this run asks {new_settings.get(name)!r}"
        for name in sorted(set(old_settings) | set(new_settings))
        if old_settings.get(name) != new_settings.get(name)
    )
    raise JournalMismatchError(
        f"the journal {path} belongs to a different job spec ({'; '.join(differences)}); "
        "use another --journal (or --out) for a new job, or rerun with the original settings"
    )


def _check_spec_sync(path: Path, spec: JobSpec) -> None:
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open the journal {path}: {exc}") from exc
    try:
        # a run killed between creating the file and writing the schema leaves it empty: a new journal
        fresh = not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        row = (
            None if fresh else conn.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
        )
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path} is not a usable journal: {exc}") from exc
    finally:
        conn.close()
    if row is not None:
        _compare_spec(path, json.loads(row[0]), spec)
