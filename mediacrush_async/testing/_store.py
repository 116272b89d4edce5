"""The emulator's records (the server's Redis objects) and the files it serves (its storage directory)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import attrs

from ._blobs import Blob
from ._derived import Output
from ._media import MediaKind


@attrs.define(eq=False)
class FileRecord:
    """A `File`: an accepted upload and how far its processing got.

    Attributes:
        hash: The file id.
        original_ext: Extension of the stored original `<hash>.<ext>`.
        mimetype: The uploader's type (the object's `type`).
        owner: Client address of the (latest accepted) uploader.
        upload: The uploaded bytes.
        attempt: How many uploads of these bytes were accepted before this one.
        planned_failure: The failure status this processing will end in, or None.
        kind: The detected type, once known.
        stage: `pending`, `processing`, `ready` or `done`.
        outputs: The listed files and extras, once the type is known.
        flags: The flags (empty until the type is known).
        metadata: `{}` until ready, then the detected metadata (may be None).
        compression: The original's size until ready, then original size / smallest output.
        title: Set through `/api/<h>/text`.
        description: Same.
        scope: Cancels the processing task (on re-upload or delete).
    """

    hash: str
    original_ext: str
    mimetype: str
    owner: str
    upload: Blob
    attempt: int = 0
    planned_failure: str | None = None
    kind: MediaKind | None = None
    stage: str = "pending"
    outputs: list[Output] = attrs.Factory(list)
    flags: dict[str, bool] = attrs.Factory(dict)
    metadata: dict[str, Any] | None = attrs.Factory(dict)
    compression: float = 0.0
    title: str | None = None
    description: str | None = None
    scope: anyio.CancelScope | None = None

    @property
    def original_name(self) -> str:
        """`<hash>.<ext>` of the stored original."""
        return f"{self.hash}.{self.original_ext}"


@attrs.define(eq=False)
class FailedRecord:
    """A `FailedFile`: what is left of a file whose processing failed (its status only)."""

    hash: str
    status: str


@attrs.define(eq=False)
class AlbumRecord:
    """An `Album`.

    Attributes:
        hash: 12 random hex characters.
        items: File ids in order (repeats allowed).
        owner: Client address of the creator.
        title: Set through `/api/<h>/text`.
        description: Same.
        zip_state: `none`, `building` or `done`.
    """

    hash: str
    items: list[str]
    owner: str
    title: str | None = None
    description: str | None = None
    zip_state: str = "none"


@attrs.define(eq=False)
class StoredFile:
    """One file in the storage directory, as nginx serves it.

    Attributes:
        blob: The bytes.
        mtime: When it was written (wall clock).
        etag: nginx's ETag: hex mtime and hex size.
    """

    blob: Blob
    mtime: float
    etag: str

    @classmethod
    def new(cls, blob: Blob) -> StoredFile:
        """Store `blob` now."""
        mtime = time.time()
        return cls(blob=blob, mtime=mtime, etag=f'"{int(mtime):x}-{blob.size:x}"')


Record = FileRecord | AlbumRecord | FailedRecord


class Store:
    """All records and stored files, plus the `url.<URL>` keys of URL uploads."""

    def __init__(self) -> None:
        self.files: dict[str, FileRecord] = {}
        self.failed: dict[str, FailedRecord] = {}
        self.albums: dict[str, AlbumRecord] = {}
        self.stored: dict[str, StoredFile] = {}
        self.url_keys: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self._changed: anyio.Event | None = None

    def changed(self) -> anyio.Event:
        """An event set at the next change of any record (created on demand, inside the event loop)."""
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def notify(self) -> None:
        """Wake whoever waits on `changed()`."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def lookup(self, h: str) -> Record | None:
        """`RedisObject.klass`: File first, then Album, then FailedFile."""
        return self.files.get(h) or self.albums.get(h) or self.failed.get(h)

    def put_stored(self, name: str, blob: Blob, *, keep: Blob | None = None) -> None:
        """Write a file into storage, replacing one of the same name (whose blob is deleted unless `keep`)."""
        old = self.stored.get(name)
        self.stored[name] = StoredFile.new(blob)
        if old is not None and old.blob is not blob and old.blob is not keep:
            old.blob.discard()

    def remove_stored(self, h: str, *, keep: Blob | None = None) -> None:
        """Delete every stored file whose name starts with `<h>.`."""
        prefix = f"{h}."
        for name in [n for n in self.stored if n.startswith(prefix)]:
            entry = self.stored.pop(name)
            if entry.blob is not keep:
                entry.blob.discard()

    def drop_file(self, record: FileRecord) -> None:
        """Remove a File, its processing and its stored files (delete, failure or overwrite)."""
        if self.files.get(record.hash) is record:
            del self.files[record.hash]
        if record.scope is not None:
            record.scope.cancel()
        self.remove_stored(record.hash)
        record.upload.discard()
        self.notify()

    def album_files(self, album: AlbumRecord) -> list[FileRecord]:
        """The album's items that are still Files, in order (issue #422: missing ones are skipped)."""
        return [self.files[h] for h in album.items if h in self.files]

    def clear(self) -> None:
        """Drop everything (the emulator is closing)."""
        for record in list(self.files.values()):
            self.drop_file(record)
        for entry in self.stored.values():
            entry.blob.discard()
        self.stored.clear()
        self.failed.clear()
        self.albums.clear()
        self.url_keys.clear()
