"""The MediaCrush adapter: the engine's remote steps as calls of the public `mediacrush_async` client.

upload -> wait `done` -> download the derived files (`files` and `extras`) -> optional delete.

How MediaCrush maps onto the engine:
- There is no job to start (the adapter is no `Starter`): an item goes UPLOADED -> RESTORED when its
  processing is `done`. `pending`, `processing` and `ready` are phase PROCESSING (with a rough fraction for the poll
  planner); the four failure statuses (unrecognised, error, timeout, internal_error) are phase FAILED with
  the status as the error code; an unknown hash is phase GONE.
- Local files are pushed, not fetched: `PushStager` "stages" a file as its own path, and `upload()`
  streams it as multipart after a content-hash pre-check (`/exists`). http(s) inputs go through
  `upload_url`, which the server fetches.
- Uploads are idempotent: the id is the content hash and a repeat is answered "already uploaded". So no
  upload outcome is ever unknown: a failure that may have reached the server is transient, and the repeat
  finds the file by its hash. There is no account listing (the adapter is no `Sweeper`), so reconciliation
  of an upload left open by a crash finds no candidate and uploads again, which is safe for the same reason;
  status is one cheap, unlimited call per file, so each waiting item is probed.
- An item's result is several files: `download()` fetches each (resumable) into the output directory under
  its served name `<hash>.<ext>`, then writes the item's output proper, a JSON manifest listing them with
  sizes and sha256 checksums (`read_manifest`).
- Ownership lives in the engine's journal, so it survives a restart: before an item's first upload the
  engine asks `precheck()` (`/exists` by content hash); a file the server already had is recorded as
  someone else's and never deleted (a delete removes it for everyone who uploaded the same bytes). What the
  batch's own uploads created is deleted with `keep_remote=False`, also by a later process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
import attrs

from _clientkit._filenames import safe_join
from mediacrush_async import (
    Album,
    File,
    FileEntry,
    InvalidArgumentError,
    MediaCrushAPIError,
    MediaCrushClient,
    NotFoundError,
    NotOwnerError,
    ProcessingStatus,
    RateLimitedError,
    ServerError,
    Status,
    UnsupportedMediaError,
    content_hash,
)
from orchestrator._config import RunnerConfig
from orchestrator._inputs import local_file_problem
from orchestrator._outputs import derived_name
from orchestrator._polling import PollSettings
from orchestrator._service import (
    ItemError,
    JobSpec,
    Phase,
    ProgressCallback,
    RemoteStatus,
    Source,
    Uploaded,
)

__all__ = [
    "FAILURE_MESSAGES",
    "MANIFEST_SUFFIX",
    "DerivedFile",
    "Manifest",
    "MediaCrushAdapter",
    "UploadProgress",
    "read_manifest",
    "status_of",
]

log = logging.getLogger("orchestrator")

MANIFEST_SUFFIX: Final = ".mediacrush.json"
FAILURE_MESSAGES: Final = {
    ProcessingStatus.UNRECOGNISED: "the server did not recognise the file as media",
    ProcessingStatus.ERROR: "processing failed on the server",
    ProcessingStatus.TIMEOUT: "processing took too long on the server",
    ProcessingStatus.INTERNAL_ERROR: (
        "the server's workers failed; uploading again may work (--retry-failed)"
    ),
}
# rough share of the whole processing done when a status is first seen (for the poll planner)
_FRACTIONS: Final = {ProcessingStatus.PROCESSING: 0.3, ProcessingStatus.READY: 0.7}
_HASH_CHUNK: Final = 1024 * 1024

UploadProgress = Callable[[Path, int, int | None], object]
"""`progress(path, sent_bytes, total_bytes)` while a local file is uploaded."""


def status_of(status: Status, *, base_url: str) -> RemoteStatus:
    """A MediaCrush status as the engine sees it (`done` is RESTORED at the object's API URL)."""
    value = status.status
    shown = status.raw_status or value.value
    if value is ProcessingStatus.DONE:
        return RemoteStatus(
            Phase.RESTORED,
            fraction=1.0,
            state=shown,
            progress=100.0,
            result_url=f"{base_url}/api/{status.hash}",
        )
    if value.is_failure:
        return RemoteStatus(
            Phase.FAILED,
            state=shown,
            error_code=value.value,
            error_message=FAILURE_MESSAGES.get(value, f"processing ended as {shown!r}"),
        )
    if value is ProcessingStatus.UNKNOWN:
        return RemoteStatus(Phase.UNKNOWN, state=shown)
    return RemoteStatus(Phase.PROCESSING, fraction=_FRACTIONS.get(value), state=shown)


# ---------------------------------------------------------------------- the manifest


@attrs.frozen
class DerivedFile:
    """One stored file of an item, as its manifest lists it.

    Attributes:
        name: the served name, `<hash>.<ext>`.
        role: `file` (the original first, then the outputs) or `extra` (e.g. a thumbnail).
        url: where it can be downloaded.
        type: its mimetype, or None.
        path: where it was downloaded to, or None (not downloaded, or listed but missing on the server).
        size: its size in bytes once downloaded.
        sha256: its checksum once downloaded.
    """

    name: str
    role: str
    url: str
    type: str | None = None
    path: str | None = None
    size: int | None = None
    sha256: str | None = None


@attrs.frozen
class Manifest:
    """The output of one item: its hash and every derived file.

    Attributes:
        hash: the file's MediaCrush id.
        blob_type: `video`, `audio` or `image`.
        files: the files and extras, in the server's order.
    """

    hash: str
    blob_type: str | None
    files: tuple[DerivedFile, ...]

    def to_json(self) -> str:
        """The manifest as written to disk."""
        return json.dumps(attrs.asdict(self), indent=2) + "\n"


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest that `MediaCrushAdapter.download` wrote (blocking; small file)."""
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    files = tuple(DerivedFile(**entry) for entry in data.get("files", ()))
    return Manifest(hash=data["hash"], blob_type=data.get("blob_type"), files=files)


def _write_manifest(dest: Path, manifest: Manifest) -> None:
    part = dest.with_name(dest.name + ".part")
    with part.open("w", encoding="utf-8") as handle:
        handle.write(manifest.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    part.replace(dest)


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# ---------------------------------------------------------------------- the adapter


class MediaCrushAdapter:
    """`ServiceAdapter` for MediaCrush over a `MediaCrushClient` the caller owns (and closes).

    `download=False` fetches nothing: the manifest then lists the derived files' URLs only (for a batch
    that only uploads and waits). `on_upload_progress(path, sent, total)` follows local uploads.
    """

    name = "mediacrush"

    def __init__(
        self,
        client: MediaCrushClient,
        *,
        download: bool = True,
        on_upload_progress: UploadProgress | None = None,
    ) -> None:
        self._client = client
        self._download = download
        self._on_upload_progress = on_upload_progress
        self._objects: dict[str, File] = {}
        # hashes this process sent, so that a second input of the same bytes is not sent again (a cache
        # only: which remote files are the batch's own to delete is the journal's, across restarts)
        self._sent: set[str] = set()
        # derived names taken
        self._names: dict[str, tuple[str, str]] = {}  # case-folded name -> (hash, served name)
        self._locks: dict[str, anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"<MediaCrushAdapter base_url={self._client.base_url!r} download={self._download}>"

    @staticmethod
    def batch_config(out: Path, **changes: Any) -> RunnerConfig:
        """The engine's settings for a MediaCrush batch into `out` (`changes` override them): status
        is cheap and uploads are idempotent (content-hash ids), so quick polls, nothing to settle,
        several uploads at once, and 16 files worked on at once."""
        tuned = RunnerConfig(
            out,
            poll=PollSettings(min_interval=0.5, max_interval=10.0),
            settle=0.0,
            max_active=16,
            max_uploads=4,
            max_downloads=4,
        )
        return attrs.evolve(tuned, **changes)

    @staticmethod
    def input_problem(text: str) -> str | None:
        """What is wrong with `text` as an input (a readable local file: the server takes the bytes), or
        None; checked before any request."""
        return local_file_problem(text)

    def job_spec(self) -> JobSpec:
        """Every item is uploaded and its files and extras are kept (downloaded, or listed)."""
        return JobSpec("mediacrush", {"outputs": "files+extras", "download": self._download})

    def output_name(self, input_name: str) -> str:
        """The manifest's name: the input's base name plus `.mediacrush.json`."""
        return (input_name or "media") + MANIFEST_SUFFIX

    # ------------------------------------------------------------------ remote steps

    async def precheck(self, source: Source) -> str | None:
        """The hash of a local file if the server already has it (`/exists`), else None.

        The engine asks before an item's first upload and records the answer in the journal: a file the
        server already had is someone else's (or an earlier batch's) and is never deleted by this one.
        """
        if not isinstance(source, Path):
            return None  # the server fetches URLs itself; `upload_url` says whether it had the file
        try:
            file_hash = await anyio.to_thread.run_sync(content_hash, source)
        except InvalidArgumentError as exc:
            raise ItemError("InputUnreadable", str(exc)) from exc
        return file_hash if await self._client.exists(file_hash) else None

    async def upload(self, source: Source, *, notify_url: str | None) -> Uploaded:  # noqa: ARG002
        """Upload a staged local file (a `Path`) or have the server fetch an http(s) URL.

        MediaCrush has no callbacks, so `notify_url` is ignored. A local file is ours once uploaded (the
        engine's precheck already set aside files the server had); a URL the server says it already had
        is not.
        """
        try:
            if isinstance(source, Path):
                return Uploaded(await self._upload_file(source))
            result = await self._client.upload_url(source)
        except InvalidArgumentError as exc:
            raise ItemError("InvalidInput", str(exc)) from exc
        except (RateLimitedError, ServerError):
            raise  # the client waited or retried already; the engine retries the step
        except MediaCrushAPIError as exc:
            raise ItemError(type(exc).__name__, str(exc)) from exc
        return Uploaded(result.hash, owned=not result.already_uploaded)

    async def _upload_file(self, path: Path) -> str:
        """Stream the file; a 409 here is our own earlier attempt (or a concurrent uploader's)."""
        try:
            file_hash = await anyio.to_thread.run_sync(content_hash, path)
        except InvalidArgumentError as exc:
            raise ItemError("InputUnreadable", str(exc)) from exc
        async with self._lock(file_hash):  # two inputs with the same bytes: one upload
            if file_hash in self._sent:
                return file_hash
            hook = self._on_upload_progress
            result = await self._client.upload_file(
                path,
                skip_existing=False,
                progress=None if hook is None else lambda sent, total: hook(path, sent, total),
            )
            if result.hash != file_hash:
                raise ItemError(
                    "HashMismatch",
                    f"the server stored {result.hash}, the file's hash is {file_hash}",
                )
            self._sent.add(file_hash)
        return file_hash

    def _claim(self, file_hash: str, served: str, name: str) -> str:
        """`name` for the file `served` of `file_hash`, numbered if another file took it (ignoring case)."""
        stem, dot, ext = name.rpartition(".")
        candidate, n = name, 2
        while self._names.setdefault(candidate.casefold(), (file_hash, served)) != (
            file_hash,
            served,
        ):
            candidate = f"{stem}-{n}.{ext}" if dot else f"{name}-{n}"
            n += 1
        return candidate

    def _lock(self, file_hash: str) -> anyio.Lock:
        return self._locks.setdefault(file_hash, anyio.Lock())

    async def status(self, remote_id: str) -> RemoteStatus:
        """`GET /api/<hash>/status` as a `RemoteStatus`; an unknown hash is GONE."""
        try:
            status = await self._client.status(remote_id)
        except NotFoundError as exc:
            return RemoteStatus(Phase.GONE, error_code="NotFound", error_message=str(exc))
        except UnsupportedMediaError as exc:
            return RemoteStatus(Phase.FAILED, error_code="NotAFile", error_message=str(exc))
        if status.file is not None and status.status is ProcessingStatus.DONE:
            self._objects[remote_id] = status.file
        return status_of(status, base_url=self._client.base_url)

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: ProgressCallback | None,
        reissue_of: str | None = None,  # noqa: ARG002 - MediaCrush links do not expire
    ) -> Path:
        """Every derived file into `dest`'s directory, then the manifest at exactly `dest`."""
        file_hash = url.rstrip("/").rsplit("/", 1)[-1]
        async with self._lock(file_hash):  # two inputs with the same bytes share their files
            blob = self._objects.pop(file_hash, None) or await self._info(file_hash)
            entries = [("file", e) for e in blob.files] + [("extra", e) for e in blob.extras]
            done_before = 0
            listed: list[DerivedFile] = []
            for index, (role, entry) in enumerate(entries):
                derived, size = await self._fetch(
                    file_hash,
                    entry,
                    role,
                    dest.parent,
                    original=index == 0,
                    progress=progress,
                    base=done_before,
                )
                done_before += size
                listed.append(derived)
            manifest = Manifest(hash=file_hash, blob_type=blob.blob_type, files=tuple(listed))
            await anyio.to_thread.run_sync(_write_manifest, dest, manifest)
        return dest

    async def describe(self, output: Path) -> list[str]:
        """The files an item's manifest lists: where each was downloaded, else its URL (`Describer`)."""
        manifest = await anyio.to_thread.run_sync(read_manifest, output)
        return [f.path or f.url for f in manifest.files]

    async def _info(self, file_hash: str) -> File:
        blob = await self._client.info(file_hash)
        if isinstance(blob, Album):
            raise ItemError("NotAFile", f"{file_hash} is an album")
        return blob

    async def _fetch(
        self,
        file_hash: str,
        entry: FileEntry,
        role: str,
        directory: Path,
        *,
        original: bool,
        progress: ProgressCallback | None,
        base: int,
    ) -> tuple[DerivedFile, int]:
        """Download one derived file (or only list it); returns its manifest entry and size."""
        name = self._claim(file_hash, entry.file, derived_name(file_hash, entry.file))
        url = entry.url or f"{self._client.base_url}{entry.file}"
        listed = DerivedFile(name=name, role=role, url=url, type=entry.type)
        if not self._download:
            return listed, 0

        def report(done: int, total: int | None) -> None:  # noqa: ARG001 - one total per item
            if progress is not None:
                progress(base + done, None)

        try:
            # The item's own output directory: the engine owns what is in it (two inputs with the same
            # bytes share one upload and fetch the same derived files), so replacing is intended.
            path = await self._client.download(
                entry, safe_join(directory, name), progress=report, overwrite=True
            )
        except NotFoundError as exc:
            if original:
                raise ItemError("MissingOriginal", f"{name}: {exc}") from exc
            # the server lists some names it never makes (e.g. `.jpg` for a `.jpeg` original)
            log.warning("a listed derived file does not exist", extra={"file_name": name})
            return listed, 0
        size, digest = await anyio.to_thread.run_sync(_size_and_sha256, path)
        return attrs.evolve(listed, path=str(path), size=size, sha256=digest), size

    async def delete(self, remote_id: str) -> None:
        """Delete a file the batch uploaded (the engine asks only for those, as its journal says)."""
        try:
            await self._client.delete(remote_id)
        except NotFoundError:
            log.debug("file already gone at delete", extra={"hash": remote_id})
        except NotOwnerError:
            # a file whose processing failed is refused like someone else's: it is gone anyway
            log.info(
                "delete refused: not the owner, or processing failed", extra={"hash": remote_id}
            )
        self._sent.discard(remote_id)
