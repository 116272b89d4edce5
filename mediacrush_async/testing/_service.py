"""The emulated server's domain: uploads, albums, reads, changes, pages and stored files (MEDIACRUSH.md 3).

`MediaCrushService` holds the state (the store, the per-address budgets, forced failures) and the route
handlers the app's `ROUTES` table names; each returns `(payload, code)` for an API route, or a `Response`.
What exists only while the emulator is open is its `Runtime`.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs
import httpx

from _servekit._files import response_headers, select

from ._config import EmulatorConfig
from ._faults import FaultPlan
from ._http import (
    HTTPError,
    Request,
    Response,
    error_page_500,
    html,
    http_date,
    nginx_page,
    read_form,
    redirect,
    werkzeug_page,
)
from ._lifecycle import Pipeline
from ._media import SERVED_TYPES
from ._objects import BROKEN_OBJECT, album_object, file_object
from ._ratelimit import FixedWindowCounter
from ._store import AlbumRecord, FailedRecord, FileRecord, Store

logger = logging.getLogger("mediacrush_async.testing")

Payload = tuple[Any, int]
ApiResult = Payload | Response


@attrs.define
class Runtime:
    """What exists only while the emulator is open.

    Attributes:
        pipeline: Processing tasks.
        spool_dir: Where big uploads and derived files go.
        http: The client URL uploads fetch with.
        task_group: For background work (album zips).
    """

    pipeline: Pipeline
    spool_dir: Path
    http: httpx.AsyncClient
    task_group: anyio.abc.TaskGroup


@attrs.define
class Ctx:
    """What the request log records of a request, filled in as it is handled."""

    route: str = "?"
    hash: str | None = None
    size: int = 0


class MediaCrushService:
    """The server's state and its route handlers; background work runs in `runtime`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store()
        self.runtime: Runtime | None = None
        self.forced_failures: dict[str, list[str]] = {}
        self.faults = FaultPlan(config)
        self._album_ids = random.Random(f"mediacrush-albums/{config.seed}")
        self.upload_budget = FixedWindowCounter(
            config.byte_limit,
            config.scaled(config.byte_window),
            anyio.current_time,
            config.rate_limit_exempt,
        )
        self._feedback_budget = FixedWindowCounter(6, config.scaled(86400.0), anyio.current_time)

    def require_runtime(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError(
                "the MediaCrush emulator is not running: use `async with MediaCrushEmulator(...)` "
                "(or its serve()) around requests that upload"
            )
        return self.runtime

    # ------------------------------------------------------------------------------------ albums

    def _new_album_id(self) -> str:
        while True:
            h = hashlib.md5(self._album_ids.randbytes(16), usedforsecurity=False).hexdigest()[:12]
            if self.store.lookup(h) is None:
                return h

    async def album_create(self, request: Request, ctx: Ctx, _: dict[str, str]) -> ApiResult:
        form = await read_form(request)
        listing = form.fields.get("list")
        if listing is None:
            raise HTTPError(werkzeug_page(400))
        items = listing.split(",")
        for h in items:
            record = self.store.lookup(h)
            if record is None:
                return {"error": 404}, 404
            if not isinstance(record, FileRecord):
                return {"error": 415}, 415
        if len(items) > self.config.max_album_items:
            return {"error": 413}, 413
        album = AlbumRecord(hash=self._new_album_id(), items=items, owner=request.client_ip)
        self.store.albums[album.hash] = album
        ctx.hash = album.hash
        return {"hash": album.hash}, 200

    async def _build_zip(self, album: AlbumRecord) -> None:
        await anyio.sleep(self.config.scaled(self.config.zip_seconds))
        album.zip_state = "done"

    async def album_zip(self, request: Request, ctx: Ctx, _: dict[str, str]) -> ApiResult:
        form = await read_form(request)
        h = form.fields.get("hash")
        if h is None:
            return {"error": 415}, 415
        ctx.hash = h
        album = self.store.albums.get(h)
        if album is None or self.store.files.get(h) is not None:
            return {"error": 404}, 404
        if album.zip_state == "done":
            return {"status": "done"}, 200
        if album.zip_state == "none":
            album.zip_state = "building"
            self.require_runtime().task_group.start_soon(self._build_zip, album)
        return {"status": "success"}, 200

    # ------------------------------------------------------------------------------------ reads

    def _object_or_null(self, h: str, origin: str) -> Any:
        record = self.store.lookup(h)
        if isinstance(record, FileRecord):
            return file_object(self.config, record, origin)
        if isinstance(record, AlbumRecord):
            obj = album_object(self.config, self.store, record, origin)
            return BROKEN_OBJECT if obj is None else obj
        return None

    async def info(self, request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        record = self.store.lookup(params["hash"])
        if isinstance(record, FailedRecord):
            raise HTTPError(error_page_500())
        if isinstance(record, FileRecord):
            return file_object(self.config, record, request.origin), 200
        if isinstance(record, AlbumRecord):
            obj = album_object(self.config, self.store, record, request.origin)
            if obj is not None:
                return obj, 200
        return {"error": 404}, 404

    async def info_list(self, request: Request, _ctx: Ctx, _: dict[str, str]) -> ApiResult:
        listing = request.query.get("list")
        if listing is None:
            return {"error": 400}, 400
        return {h: self._object_or_null(h, request.origin) for h in listing.split(",")}, 200

    async def url_info(self, request: Request, _ctx: Ctx, _: dict[str, str]) -> ApiResult:
        form = await read_form(request)
        listing = form.fields.get("list")
        if listing is None:
            raise HTTPError(werkzeug_page(400))
        result: dict[str, Any] = {}
        for url in listing.split(","):
            h = self.store.url_keys.get(url)
            record = self.store.files.get(h) if h is not None else None
            if record is None:
                self.store.url_keys.pop(url, None)
                result[url] = None
            else:
                result[url] = file_object(self.config, record, request.origin)
        return result, 200

    async def exists(self, _request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        if params["hash"] in self.store.files:
            return {"exists": True}, 200
        return {"exists": False}, 200 if self.config.doc_exists_200 else 404

    async def status(self, request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        h = params["hash"]
        record = self.store.lookup(h)
        if record is None:
            return {"error": 404}, 404
        if isinstance(record, AlbumRecord):
            return {"error": 415}, 415
        if isinstance(record, FailedRecord):
            return {"status": record.status}, 200
        body: dict[str, Any] = {"status": record.stage}
        include = record.kind is not None
        if self.config.doc_status_result_only_when_done:
            include = record.stage == "done"
        if include:
            body["hash"] = h
            body[h] = file_object(self.config, record, request.origin)
        return body, 200

    async def status_list(self, request: Request, _ctx: Ctx, _: dict[str, str]) -> ApiResult:
        listing = request.query.get("list")
        if listing is None:
            return {"error": 400}, 400
        result: dict[str, Any] = {}
        for h in listing.split(","):
            record = self.store.lookup(h)
            if isinstance(record, AlbumRecord):
                raise HTTPError(error_page_500())  # an Album has no status: AttributeError
            if isinstance(record, FailedRecord):
                result[h] = {"status": record.status}
            elif isinstance(record, FileRecord):
                entry: dict[str, Any] = {"status": record.stage}
                if not self.config.doc_status_list_without_file:
                    entry["file"] = file_object(self.config, record, request.origin)
                result[h] = entry
            else:
                result[h] = None
        return result, 200

    # ------------------------------------------------------------------------------------ changes

    async def get_flags(self, _request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        record = self.store.files.get(params["hash"])
        if record is None:
            return {"error": 404}, 404
        return {"flags": dict(record.flags)}, 200

    async def set_flags(self, request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        form = await read_form(request)
        record = self.store.lookup(params["hash"])
        if record is None:
            return {"error": 404}, 404
        if isinstance(record, FailedRecord) or record.owner != request.client_ip:
            return {"error": 401}, 401
        if isinstance(record, AlbumRecord):
            return {"error": 415}, 415
        flags = dict(record.flags)
        for name, value in form.fields.items():
            if name not in flags:
                return {"error": 415}, 415
            flags[name] = value == "true"
        record.flags = flags
        return {"flags": dict(flags)}, 200

    async def set_text(self, request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        form = await read_form(request)
        record = self.store.lookup(params["hash"])
        if record is None or isinstance(record, FailedRecord):
            return {"error": 404}, 404
        if record.owner != request.client_ip:
            return {"error": 401}, 401
        title = form.fields.get("title")
        description = form.fields.get("description")
        if title is None and description is None:
            return {"error": 400}, 400
        if any(v is not None and len(v) > 2048 for v in (title, description)):
            return {"error": 414}, 414
        if title is not None:
            record.title = title
        if description is not None:
            record.description = description
        return {"status": "success"}, 200

    async def delete(self, request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        record = self.store.lookup(params["hash"])
        if record is None:
            return {"error": 404}, 404
        if isinstance(record, FailedRecord) or record.owner != request.client_ip:
            return {"error": 401}, 401
        if isinstance(record, FileRecord):
            self.store.drop_file(record)
        else:
            del self.store.albums[record.hash]
        return {"status": "success"}, 200

    async def old_delete(self, request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        return redirect(f"{request.origin}/{params['hash']}/delete")

    async def feedback(self, request: Request, _ctx: Ctx, _: dict[str, str]) -> ApiResult:
        form = await read_form(request)
        text = form.fields.get("feedback")
        if text is None:
            raise HTTPError(werkzeug_page(400))
        if len(text) > 10000:
            return {"error": 413}, 413
        if self._feedback_budget.add(request.client_ip, 1):
            return {"error": 420}, 420
        return {"status": "success"}, 200

    # ------------------------------------------------------------------------------------ pages

    async def delete_page(self, _request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        h = params["hash"]
        if not isinstance(self.store.lookup(h), FileRecord | AlbumRecord):
            return werkzeug_page(404)
        return html(
            200,
            f"<!doctype html>\n<html><head><title>Delete {h} - MediaCrush</title></head><body>\n"
            f'<p>Are you sure you want to delete {h}?</p>\n<button data-hash="{h}">Delete</button>\n'
            "</body></html>\n",
        )

    async def status_page(self, _request: Request, _ctx: Ctx, params: dict[str, str]) -> ApiResult:
        h = params["hash"]
        record = self.store.lookup(h)
        if record is None:
            return werkzeug_page(404)
        status = (
            record.stage if isinstance(record, FileRecord) else getattr(record, "status", "done")
        )
        return html(
            200,
            f"<!doctype html>\n<html><head><title>{h} - MediaCrush</title></head><body>\n"
            f'<p>Processing: <span id="status">{status}</span></p>\n</body></html>\n',
        )

    async def download_sharded(
        self, request: Request, ctx: Ctx, params: dict[str, str]
    ) -> ApiResult:
        name = params["file"]
        if not self.config.sharding or params["shard"] != name[:1]:
            return nginx_page(404)
        return self._serve_file(request, ctx, name)

    async def download(self, request: Request, ctx: Ctx, params: dict[str, str]) -> ApiResult:
        name = params["file"]
        if self.config.sharding:
            ctx.hash = name.split(".", 1)[0]
            return redirect(f"{request.origin}/{name[0]}/{name}", 301)
        return self._serve_file(request, ctx, name)

    def _serve_file(self, request: Request, ctx: Ctx, name: str) -> Response:
        """A stored file as nginx served it: ETag, If-None-Match, Range and If-Range."""
        ctx.hash = name.split(".", 1)[0]
        entry = self.store.stored.get(name)
        if entry is None:
            return nginx_page(404)
        last_modified = http_date(entry.mtime)
        ext = name.rsplit(".", 1)[-1].lower()
        headers = [
            ("Content-Type", SERVED_TYPES.get(ext, "application/octet-stream")),
            ("Last-Modified", last_modified),
            ("ETag", entry.etag),
        ]
        if request.headers.get("if-none-match") == entry.etag:
            return Response(304, [*headers, ("Accept-Ranges", "bytes")])
        selection = select(
            entry.blob.size,
            request.headers.get("range"),
            request.headers.get("if-range"),
            etag=entry.etag,
            last_modified=last_modified,
        )
        return Response(
            selection.status,
            response_headers(
                selection, headers, accept_ranges_on_206=self.config.accept_ranges_on_206
            ),
            blob=None if selection.status == 416 else entry.blob,
            start=selection.start,
            length=selection.length,
        )

    def force_failure(self, h: str, status: str, *, count: int = 1) -> None:
        """Make the next `count` processings of file id `h` end in `status`."""
        self.forced_failures.setdefault(h, []).extend([status] * count)
