"""Processing of an accepted upload: pending -> processing -> ready -> done, or a failure status.

Follows MEDIACRUSH.md section 4: detection (`process_file`) while `pending`; the browser-ready "sync"
step while `processing`; `ready` once it ends; the "async" step (`.ogv`, `.ogg`, `optipng`) until
`done`. A failure in the sync step (or an unrecognised type at detection) replaces the File with a
FailedFile that holds only the status, and deletes its stored files. Durations scale with
`EmulatorConfig.time_scale`; derived files are written in a worker thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import anyio.abc

from ._blobs import Blob, SpoolWriter
from ._config import EmulatorConfig
from ._derived import Output, plan_outputs, write_derived
from ._media import PROCESSORS, MediaKind, default_flags, metadata_for, sniff
from ._store import FailedRecord, FileRecord, Store

logger = logging.getLogger("mediacrush_async.testing")

_MIB = 1024 * 1024
#: How many leading bytes detection and metadata reading look at.
_HEAD_BYTES = 1 << 20
#: What ImageMagick made of random bytes in the server's own test (then `convert` failed).
_CLAIMED_IMAGE = MediaKind("unknown", "image", "png")


def _generate(
    kind: MediaKind,
    record: FileRecord,
    outputs: list[Output],
    spool_dir: Path | None,
    threshold: int,
    *,
    final: bool,
) -> dict[str, Blob]:
    """Write the given outputs of `record` (blocking; runs in a worker thread)."""
    made: dict[str, Blob] = {}
    try:
        for out in outputs:
            writer = SpoolWriter(spool_dir, threshold)
            with record.upload.open() as src:
                try:
                    write_derived(
                        kind,
                        record.hash,
                        out.ext,
                        original_ext=record.original_ext,
                        src=src,
                        dst=writer,
                        final=final,
                    )
                except BaseException:
                    writer.abort()
                    raise
            made[out.ext] = writer.finish()
    except BaseException:
        for blob in made.values():
            blob.discard()
        raise
    return made


class Pipeline:
    """Runs one processing task per accepted upload in the emulator's task group."""

    def __init__(
        self,
        config: EmulatorConfig,
        store: Store,
        spool_dir: Path | None,
        task_group: anyio.abc.TaskGroup,
    ) -> None:
        self._config = config
        self._store = store
        self._spool_dir = spool_dir
        self._tg = task_group
        n = config.max_concurrent_processing
        self._workers = anyio.CapacityLimiter(n) if n else None

    def start(self, record: FileRecord) -> None:
        """Begin processing `record` (it is `pending` until then)."""
        record.scope = anyio.CancelScope()
        self._tg.start_soon(self._run, record, name=f"mediacrush-emulator process {record.hash}")

    def _fail(self, record: FileRecord, status: str) -> None:
        store = self._store
        if store.files.get(record.hash) is not record:
            return
        store.drop_file(record)
        store.failed[record.hash] = FailedRecord(hash=record.hash, status=status)
        store.notify()
        logger.debug("processing failed", extra={"hash": record.hash, "status": status})

    def _publish(self, record: FileRecord, made: dict[str, Blob]) -> None:
        for ext, blob in made.items():
            self._store.put_stored(f"{record.hash}.{ext}", blob, keep=record.upload)
        made.clear()

    async def _run(self, record: FileRecord) -> None:
        scope = record.scope or anyio.CancelScope()
        made: dict[str, Blob] = {}
        with scope:
            try:
                await self._process(record, made)
            except Exception:
                # A worker that dies unexpectedly is what `internal_error` means.
                logger.exception("emulated processing crashed", extra={"hash": record.hash})
                self._fail(record, "internal_error")
            finally:
                for blob in made.values():
                    blob.discard()

    async def _process(self, record: FileRecord, made: dict[str, Blob]) -> None:
        cfg = self._config
        await anyio.sleep(cfg.scaled(cfg.detect_seconds))
        head = record.upload.head(_HEAD_BYTES)
        kind = sniff(head)
        failure = record.planned_failure
        if kind is None:
            failure = failure or cfg.non_media_status
            if failure != "error":
                self._fail(record, failure)
                return
            kind = _CLAIMED_IMAGE
        elif failure == "unrecognised":
            self._fail(record, failure)
            return
        record.kind = kind
        record.flags = default_flags(kind, with_nsfw=not cfg.doc_flags_without_nsfw)
        record.outputs = plan_outputs(
            kind, record.original_ext, png_thumbnails=cfg.doc_png_thumbnails
        )
        self._store.notify()
        await anyio.sleep(cfg.scaled(cfg.queue_seconds))
        if self._workers is None:
            await self._convert(record, kind, head, failure, made)
        else:
            async with self._workers:
                await self._convert(record, kind, head, failure, made)

    async def _convert(
        self,
        record: FileRecord,
        kind: MediaKind,
        head: bytes,
        failure: str | None,
        made: dict[str, Blob],
    ) -> None:
        cfg = self._config
        proc = PROCESSORS[kind.processor]
        threshold = cfg.memory_threshold
        record.stage = "processing"
        self._store.notify()
        started = anyio.current_time()
        sync_seconds = cfg.scaled(
            cfg.processing_seconds * proc.factor + cfg.seconds_per_mib * record.upload.size / _MIB
        )
        # The sync step begins by copying the original into storage (JPEGs lose their metadata first).
        if kind.name == "jpeg":
            original = Output(record.original_ext, "original", "processing", None)
            made.update(
                await anyio.to_thread.run_sync(
                    lambda: _generate(
                        kind, record, [original], self._spool_dir, threshold, final=True
                    )
                )
            )
            self._publish(record, made)
        else:
            self._store.put_stored(record.original_name, record.upload)
        if failure is not None:
            await anyio.sleep_until(started + sync_seconds)
            self._fail(record, failure)
            return
        sync_outputs = [o for o in record.outputs if o.stage == "ready"]
        made.update(
            await anyio.to_thread.run_sync(
                lambda: _generate(
                    kind, record, sync_outputs, self._spool_dir, threshold, final=True
                )
            )
        )
        await anyio.sleep_until(started + sync_seconds)
        file_sizes = [made[o.ext].size for o in sync_outputs if o.role == "file"]
        smallest = (
            min(file_sizes) if file_sizes else self._store.stored[record.original_name].blob.size
        )
        record.compression = round(record.upload.size / smallest, 2) if smallest else 1.0
        record.metadata = metadata_for(kind, head, record.upload.size)
        self._publish(record, made)
        record.stage = "ready"
        self._store.notify()

        started = anyio.current_time()
        finish_seconds = (
            cfg.scaled(cfg.finishing_seconds * proc.factor) if proc.has_async_step else 0.0
        )
        async_outputs = [o for o in record.outputs if o.stage == "done"]
        if kind.name == "png":
            async_outputs.append(Output(record.original_ext, "original", "done", None))
        if async_outputs:
            made.update(
                await anyio.to_thread.run_sync(
                    lambda: _generate(
                        kind, record, async_outputs, self._spool_dir, threshold, final=True
                    )
                )
            )
        await anyio.sleep_until(started + finish_seconds)
        self._publish(record, made)
        record.stage = "done"
        self._store.notify()
