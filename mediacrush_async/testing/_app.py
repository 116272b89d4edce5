"""The ASGI app: every route of MEDIACRUSH.md section 3, with the server's bodies, codes and quirks.

No web framework: a table of routes, handlers that return `(payload, code)` for API routes, and one
wrapper doing what the server's `json_output` and `cors` decorators did (sorted, indented JSON;
JSONP; `X-CORS-Status`). Missing form fields give Werkzeug's HTML 400 and uncaught errors the app's
HTML 500, as in Flask. Files are served as nginx did (ETag, ranges), with CORS headers on 2xx/3xx.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc
import attrs
import httpx

from ._blobs import Blob, SpoolWriter
from ._config import EmulatorConfig
from ._faults import FaultPlan
from ._http import (
    ClientGone,
    HTTPError,
    RangeNotSatisfiable,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    UploadedFile,
    dumps,
    error_page_500,
    html,
    http_date,
    nginx_page,
    parse_range,
    read_form,
    redirect,
    send_response,
    werkzeug_page,
)
from ._lifecycle import Pipeline
from ._log import LogEntry, RequestLog
from ._media import ENTRY_TYPES, PY2_EXTENSIONS, SERVED_TYPES, hash_from_digest, sniff
from ._ratelimit import FixedWindowCounter
from ._store import AlbumRecord, FailedRecord, FileRecord, Store

logger = logging.getLogger("mediacrush_async.testing")

#: `decorators.py: jsonp_notice`, in our words.
JSONP_NOTICE = (
    "// MediaCrush supports Cross Origin Resource Sharing requests.\n"
    "// There is no reason to use JSONP; please use CORS instead.\n"
    "// For more information, see https://mediacru.sh/docs/api"
)

#: The object embedded in a 409 for a file that could not be read (issue #356).
BROKEN_OBJECT: list[Any] = [{"error": 404}, 404]

#: nginx's CORS headers (`config/mediacrush-server.conf`), added to 2xx and 3xx replies only.
CORS_HEADERS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "HEAD, GET, OPTIONS, POST, PUT, DELETE"),
    ("Access-Control-Allow-Headers", "X-CORS-Status"),
]

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
class _Ctx:
    route: str = "?"
    hash: str | None = None
    size: int = 0


Handler = Callable[[Request, _Ctx, dict[str, str]], Awaitable[ApiResult]]


@attrs.frozen
class _Route:
    name: str
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler_name: str
    api: bool


def _r(methods: str, path: str, handler: str, *, api: bool = True) -> _Route:
    pattern = re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path.replace(".", r"\.")) + "$")
    return _Route(f"{methods} {path}", frozenset(methods.split(",")), pattern, handler, api)


ROUTES: tuple[_Route, ...] = (
    _r("POST", "/api/upload/file", "upload_file"),
    _r("POST", "/api/upload/url", "upload_url"),
    _r("POST", "/api/upload/noscript", "upload_noscript"),
    _r("POST", "/api/album/create", "album_create"),
    _r("POST", "/api/album/zip", "album_zip"),
    _r("POST", "/api/url/info", "url_info"),
    _r("POST", "/api/feedback", "feedback"),
    _r("GET", "/api/info", "info_list"),
    _r("GET", "/api/status", "status_list"),
    _r("GET", "/api/<hash>/exists", "exists"),
    _r("GET", "/api/<hash>/status", "status"),
    _r("GET", "/api/<hash>/flags", "get_flags"),
    _r("POST", "/api/<hash>/flags", "set_flags"),
    _r("POST", "/api/<hash>/text", "set_text"),
    _r("GET", "/api/<hash>/delete", "old_delete"),
    _r("GET", "/api/<hash>", "info"),
    _r("DELETE", "/api/<hash>", "delete"),
    _r("GET", "/<hash>.json", "info"),
    _r("GET", "/<hash>/delete", "delete_page", api=False),
    _r("GET", "/status/<hash>", "status_page", api=False),
    _r("GET", "/<shard>/<file>", "download_sharded", api=False),
    _r("GET", "/<file>", "download", api=False),
)


def _clean_name(name: str, *, digits: bool) -> str:
    """`upload_file` keeps letters, digits and dots; `upload_url` letters and dots only."""
    return "".join(
        c for c in name if c == "." or (c.isascii() and (c.isalpha() or (digits and c.isdigit())))
    )


def _extension(name: str, content_type: str | None) -> str:
    ext = name.rsplit(".", 1)[1].lower() if "." in name else ""
    return ext or PY2_EXTENSIONS.get((content_type or "").strip().lower(), "bin")


class App:
    """The emulated server. Call it as an ASGI app; state lives here, background work in `runtime`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store()
        self.log = RequestLog()
        self.runtime: Runtime | None = None
        self.forced_failures: dict[str, list[str]] = {}
        self._faults = FaultPlan(config)
        self._origin_time = time.monotonic()
        self._album_ids = random.Random(f"mediacrush-albums/{config.seed}")
        self.upload_budget = FixedWindowCounter(
            config.byte_limit,
            config.scaled(config.byte_window),
            anyio.current_time,
            config.rate_limit_exempt,
        )
        self._feedback_budget = FixedWindowCounter(6, config.scaled(86400.0), anyio.current_time)

    @property
    def faults(self) -> FaultPlan:
        """The seeded fault plan."""
        return self._faults

    # ------------------------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.path.startswith("/_emulator/"):
            await send_response(
                send, await self._control(request), head_only=request.method == "HEAD"
            )
            return
        fault = self._faults.next()
        ctx = _Ctx()
        if fault.delay:
            await anyio.sleep(fault.delay)
        try:
            if fault.error:
                ctx.route = self._route_name(request)
                response = error_page_500()
            else:
                response = await self._dispatch(request, ctx)
            await request.drain()  # whatever the handler left unread (as the front server would)
        except ClientGone:
            return
        response.headers.append(("Date", http_date(time.time())))
        if response.status < 400:
            response.headers.extend(CORS_HEADERS)
        kind = None
        if fault.error:
            kind = "error"
        elif fault.drop:
            kind = "drop"
        elif fault.truncate_at is not None and response.blob is not None:
            kind = "truncate"
        self.log.append(
            LogEntry(
                time=time.monotonic() - self._origin_time,
                client=request.client_ip,
                route=ctx.route,
                hash=ctx.hash,
                status=response.api_status or response.status,
                wire_status=response.status,
                fault=kind,
                size=ctx.size,
            )
        )
        await send_response(
            send,
            response,
            head_only=request.method == "HEAD",
            fault=fault,
            bandwidth=self.config.bandwidth,
        )

    def _match(self, request: Request) -> tuple[_Route | None, dict[str, str], set[str]]:
        method = "GET" if request.method == "HEAD" else request.method
        allowed: set[str] = set()
        for route in ROUTES:
            m = route.pattern.match(request.path)
            if m is None:
                continue
            allowed |= route.methods
            if method in route.methods:
                return route, m.groupdict(), allowed
        return None, {}, allowed

    def _route_name(self, request: Request) -> str:
        route, _, _ = self._match(request)
        return f"{request.method} {request.path}" if route is None else route.name

    async def _dispatch(self, request: Request, ctx: _Ctx) -> Response:
        route, params, allowed = self._match(request)
        if route is None:
            ctx.route = f"{request.method} {request.path}"
            if request.method == "OPTIONS" and allowed:
                methods = sorted(allowed | {"OPTIONS"} | ({"HEAD"} if "GET" in allowed else set()))
                return Response(200, [("Allow", ", ".join(methods))])
            return werkzeug_page(405 if allowed else 404)
        ctx.route = route.name
        if "hash" in params:
            ctx.hash = params["hash"]
        handler: Handler = getattr(self, f"_h_{route.handler_name}")
        try:
            result = await handler(request, ctx, params)
        except HTTPError as exc:
            return exc.response
        except (ClientGone, anyio.get_cancelled_exc_class()):
            raise
        except Exception:
            logger.exception("emulated server error", extra={"route": route.name})
            return error_page_500()
        if route.api or not isinstance(result, Response):
            return self._api_response(request, result)
        return result

    def _api_response(self, request: Request, result: ApiResult) -> Response:
        cors = bool(request.headers.get("x-cors-status"))
        if isinstance(result, Response):
            # `cors` tries to json.loads a non-JSON reply (a redirect) and fails.
            return error_page_500() if cors else result
        payload, code = result
        pretty = request.headers.get("x-requested-with", "").lower() != "xmlhttprequest"
        text = dumps(payload, pretty=pretty)
        ctype = "application/json"
        callback = request.query.get("callback", "")
        if callback:
            text = f"{callback}({text});\n{JSONP_NOTICE}"
            ctype = "text/javascript; charset=utf-8"
        if cors:
            if callback:
                return error_page_500()
            wrapped = json.loads(text)
            wrapped["x-status"] = code
            return Response(
                200,
                [("Content-Type", ctype)],
                dumps(wrapped, pretty=pretty).encode(),
                api_status=code,
            )
        return Response(code, [("Content-Type", ctype)], text.encode(), api_status=code)

    # ------------------------------------------------------------------------------------ objects

    def _path(self, name: str) -> str:
        return f"/{name[0]}/{name}" if self.config.sharding else f"/{name}"

    def _entry(self, name: str, mimetype: str | None, origin: str) -> dict[str, Any]:
        path = self._path(name)
        return {
            "file": path,
            "type": mimetype,
            "url": (self.config.cdn_url or origin).rstrip("/") + path,
        }

    def file_object(self, record: FileRecord, origin: str) -> dict[str, Any]:
        """`_file_object`: the JSON object of a File in its current state."""
        files = [self._entry(record.original_name, record.mimetype, origin)]
        extras = []
        for out in record.outputs:
            if out.role == "file":
                files.append(self._entry(f"{record.hash}.{out.ext}", out.entry_type, origin))
            elif out.role == "extra":
                extras.append(self._entry(f"{record.hash}.{out.ext}", out.entry_type, origin))
        metadata = record.metadata
        return {
            "blob_type": record.kind.proc.blob_type if record.kind is not None else None,
            "compression": float(record.compression),
            "description": record.description,
            "extras": extras,
            "files": files,
            "flags": dict(record.flags),
            "hash": record.hash,
            "metadata": dict(metadata) if metadata is not None else None,
            "original": self._path(record.original_name),
            "title": record.title,
            "type": record.mimetype,
        }

    def album_object(self, album: AlbumRecord, origin: str) -> dict[str, Any] | None:
        """`_album_object`, or None when none of its files is left (the server answered 404)."""
        files = self.store.album_files(album)
        if not files:
            return None
        return {
            "blob_type": "album",
            "description": album.description,
            "files": [self.file_object(f, origin) for f in files],
            "hash": album.hash,
            "metadata": {"has_zip": album.zip_state == "done"},
            "title": album.title,
            "type": "application/album",
        }

    def _runtime(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError(
                "the MediaCrush emulator is not running: use `async with MediaCrushEmulator(...)` "
                "(or its serve()) around requests that upload"
            )
        return self.runtime

    # ------------------------------------------------------------------------------------ uploads

    async def _read_upload_form(self, request: Request) -> UploadedFile:
        limit = self.config.max_body_size
        length = request.content_length
        if limit is not None and length is not None and length > limit:
            await request.drain()
            raise HTTPError(nginx_page(413))
        runtime = self._runtime()
        form = await read_form(
            request,
            file_fields=frozenset({"file"}),
            spool_dir=runtime.spool_dir,
            memory_threshold=self.config.memory_threshold,
            body_limit=limit,
        )
        upload = form.files.get("file")
        if upload is None:
            raise HTTPError(werkzeug_page(400))
        return upload

    def _accept(
        self,
        request: Request,
        ctx: _Ctx,
        *,
        blob: Blob,
        digest: bytes,
        name: str,
        content_type: str | None,
    ) -> Payload:
        """`files.py: upload()`: rate limit, id, extension, duplicate check, then a new File."""
        cfg = self.config
        store = self.store
        ip = request.client_ip
        ctx.size = blob.size
        if self.upload_budget.add(ip, blob.size):
            blob.discard()
            return {"error": 420}, 420
        h = hash_from_digest(digest)
        ctx.hash = h
        ext = _extension(name, content_type)
        mimetype = content_type or ENTRY_TYPES.get(ext) or "application/octet-stream"
        if cfg.doc_mode_415 and sniff(blob.head(65536)) is None:
            blob.discard()
            return {"error": 415}, 415
        existing = store.files.get(h)
        if existing is not None and f"{h}.{ext}" in store.stored:
            blob.discard()
            obj = (
                BROKEN_OBJECT
                if cfg.broken_409_object
                else self.file_object(existing, request.origin)
            )
            return {"error": 409, "hash": h, h: obj}, 409
        if existing is None and cfg.failed_reupload_409 and h in store.failed:
            blob.discard()
            return {"error": 409, "hash": h, h: BROKEN_OBJECT}, 409
        if existing is not None:
            store.drop_file(existing)
        else:
            store.remove_stored(h)
        attempt = store.attempts.get(h, 0)
        store.attempts[h] = attempt + 1
        forced = self.forced_failures.get(h)
        planned = forced.pop(0) if forced else self._faults.processing_outcome(h, attempt)
        if forced is not None and not forced:
            del self.forced_failures[h]
        record = FileRecord(
            hash=h,
            original_ext=ext,
            mimetype=mimetype,
            owner=ip,
            upload=blob,
            attempt=attempt,
            planned_failure=planned,
            compression=float(blob.size),
        )
        store.files[h] = record
        self._runtime().pipeline.start(record)
        store.notify()
        return {"hash": h}, 200

    async def _h_upload_file(self, request: Request, ctx: _Ctx, _: dict[str, str]) -> ApiResult:
        if self.config.read_only:
            return {"error": 403}, 403
        upload = await self._read_upload_form(request)
        name = _clean_name(upload.filename, digits=True)
        return self._accept(
            request,
            ctx,
            blob=upload.blob,
            digest=upload.digest,
            name=name,
            content_type=upload.content_type,
        )

    async def _h_upload_noscript(
        self, request: Request, ctx: _Ctx, params: dict[str, str]
    ) -> ApiResult:
        result = await self._h_upload_file(request, ctx, params)
        if isinstance(result, Response):
            return result
        payload, code = result
        if code in (200, 409):
            return redirect(f"{request.origin}/status/{payload['hash']}")
        return {"error": code}, code

    async def _fetch(self, url: str) -> tuple[Blob, bytes, str, str | None] | int:
        """`URLFile.download`: the bytes, MD5, cleaned name and type, or the error code."""
        cfg = self.config
        runtime = self._runtime()
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            return 400  # requests raises InvalidSchema / MissingSchema
        writer = SpoolWriter(runtime.spool_dir, cfg.memory_threshold)
        try:
            async with runtime.http.stream("GET", url) as resp:
                length = resp.headers.get("content-length")
                if length is None:
                    writer.abort()
                    return 400
                if not length.isdigit() or int(length) > cfg.max_url_size:
                    writer.abort()
                    return 413
                async for chunk in resp.aiter_bytes():
                    writer.write(chunk)
                    if writer.size > cfg.max_url_size:
                        writer.abort()
                        return 413
                status = resp.status_code
                content_type = resp.headers.get("content-type")
                disposition = resp.headers.get("content-disposition")
        except Exception:
            writer.abort()
            return 400
        if status == 404:
            writer.abort()
            return 404
        # Letters and dots of the last path segment (digits dropped), then the extension Python 2
        # guessed from the remote type appended; a Content-Disposition filename replaces both.
        name = _clean_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1]), digits=False)
        known = PY2_EXTENSIONS.get((content_type or "").lower())
        if known is not None:
            name = f"{name}.{known}"
        if disposition:
            msg = Message()
            msg["content-disposition"] = disposition
            filename = msg.get_filename()
            if filename:
                name = _clean_name(filename, digits=True)
        return writer.finish(), writer.md5.digest(), name, content_type

    async def _h_upload_url(self, request: Request, ctx: _Ctx, _: dict[str, str]) -> ApiResult:
        if self.config.read_only:
            return {"error": 403}, 403
        form = await read_form(request)
        url = form.fields.get("url")
        if url is None:
            raise HTTPError(werkzeug_page(400))
        fetched = await self._fetch(url)
        if isinstance(fetched, int):
            return {"error": fetched}, fetched
        blob, digest, name, content_type = fetched
        result = self._accept(
            request, ctx, blob=blob, digest=digest, name=name, content_type=content_type
        )
        self.store.url_keys[url] = hash_from_digest(digest)
        return result

    # ------------------------------------------------------------------------------------ albums

    def _new_album_id(self) -> str:
        while True:
            h = hashlib.md5(self._album_ids.randbytes(16), usedforsecurity=False).hexdigest()[:12]
            if self.store.lookup(h) is None:
                return h

    async def _h_album_create(self, request: Request, ctx: _Ctx, _: dict[str, str]) -> ApiResult:
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

    async def _h_album_zip(self, request: Request, ctx: _Ctx, _: dict[str, str]) -> ApiResult:
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
            self._runtime().task_group.start_soon(self._build_zip, album)
        return {"status": "success"}, 200

    # ------------------------------------------------------------------------------------ reads

    def _object_or_null(self, h: str, origin: str) -> Any:
        record = self.store.lookup(h)
        if isinstance(record, FileRecord):
            return self.file_object(record, origin)
        if isinstance(record, AlbumRecord):
            obj = self.album_object(record, origin)
            return BROKEN_OBJECT if obj is None else obj
        return None

    async def _h_info(self, request: Request, _ctx: _Ctx, params: dict[str, str]) -> ApiResult:
        record = self.store.lookup(params["hash"])
        if isinstance(record, FailedRecord):
            raise HTTPError(error_page_500())
        if isinstance(record, FileRecord):
            return self.file_object(record, request.origin), 200
        if isinstance(record, AlbumRecord):
            obj = self.album_object(record, request.origin)
            if obj is not None:
                return obj, 200
        return {"error": 404}, 404

    async def _h_info_list(self, request: Request, _ctx: _Ctx, _: dict[str, str]) -> ApiResult:
        listing = request.query.get("list")
        if listing is None:
            return {"error": 400}, 400
        return {h: self._object_or_null(h, request.origin) for h in listing.split(",")}, 200

    async def _h_url_info(self, request: Request, _ctx: _Ctx, _: dict[str, str]) -> ApiResult:
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
                result[url] = self.file_object(record, request.origin)
        return result, 200

    async def _h_exists(self, _request: Request, _ctx: _Ctx, params: dict[str, str]) -> ApiResult:
        if params["hash"] in self.store.files:
            return {"exists": True}, 200
        return {"exists": False}, 200 if self.config.doc_exists_200 else 404

    async def _h_status(self, request: Request, _ctx: _Ctx, params: dict[str, str]) -> ApiResult:
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
            body[h] = self.file_object(record, request.origin)
        return body, 200

    async def _h_status_list(self, request: Request, _ctx: _Ctx, _: dict[str, str]) -> ApiResult:
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
                    entry["file"] = self.file_object(record, request.origin)
                result[h] = entry
            else:
                result[h] = None
        return result, 200

    # ------------------------------------------------------------------------------------ changes

    async def _h_get_flags(
        self, _request: Request, _ctx: _Ctx, params: dict[str, str]
    ) -> ApiResult:
        record = self.store.files.get(params["hash"])
        if record is None:
            return {"error": 404}, 404
        return {"flags": dict(record.flags)}, 200

    async def _h_set_flags(self, request: Request, _ctx: _Ctx, params: dict[str, str]) -> ApiResult:
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

    async def _h_set_text(self, request: Request, _ctx: _Ctx, params: dict[str, str]) -> ApiResult:
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

    async def _h_delete(self, request: Request, _ctx: _Ctx, params: dict[str, str]) -> ApiResult:
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

    async def _h_old_delete(
        self, request: Request, _ctx: _Ctx, params: dict[str, str]
    ) -> ApiResult:
        return redirect(f"{request.origin}/{params['hash']}/delete")

    async def _h_feedback(self, request: Request, _ctx: _Ctx, _: dict[str, str]) -> ApiResult:
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

    async def _h_delete_page(
        self, _request: Request, _ctx: _Ctx, params: dict[str, str]
    ) -> ApiResult:
        h = params["hash"]
        if not isinstance(self.store.lookup(h), FileRecord | AlbumRecord):
            return werkzeug_page(404)
        return html(
            200,
            f"<!doctype html>\n<html><head><title>Delete {h} - MediaCrush</title></head><body>\n"
            f'<p>Are you sure you want to delete {h}?</p>\n<button data-hash="{h}">Delete</button>\n'
            "</body></html>\n",
        )

    async def _h_status_page(
        self, _request: Request, _ctx: _Ctx, params: dict[str, str]
    ) -> ApiResult:
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

    async def _h_download_sharded(
        self, request: Request, ctx: _Ctx, params: dict[str, str]
    ) -> ApiResult:
        name = params["file"]
        if not self.config.sharding or params["shard"] != name[:1]:
            return nginx_page(404)
        return self._serve_file(request, ctx, name)

    async def _h_download(self, request: Request, ctx: _Ctx, params: dict[str, str]) -> ApiResult:
        name = params["file"]
        if self.config.sharding:
            ctx.hash = name.split(".", 1)[0]
            return redirect(f"{request.origin}/{name[0]}/{name}", 301)
        return self._serve_file(request, ctx, name)

    def _serve_file(self, request: Request, ctx: _Ctx, name: str) -> Response:
        ctx.hash = name.split(".", 1)[0]
        entry = self.store.stored.get(name)
        if entry is None:
            return nginx_page(404)
        size = entry.blob.size
        last_modified = http_date(entry.mtime)
        ext = name.rsplit(".", 1)[-1].lower()
        headers = [
            ("Content-Type", SERVED_TYPES.get(ext, "application/octet-stream")),
            ("Last-Modified", last_modified),
            ("ETag", entry.etag),
            ("Accept-Ranges", "bytes"),
        ]
        if request.headers.get("if-none-match") == entry.etag:
            return Response(304, headers)
        if_range = request.headers.get("if-range")
        honour = if_range is None or if_range in (entry.etag, last_modified)
        try:
            byte_range = parse_range(request.headers.get("range"), size) if honour else None
        except RangeNotSatisfiable:
            return Response(416, [*headers, ("Content-Range", f"bytes */{size}")])
        if byte_range is None:
            return Response(200, headers, blob=entry.blob, start=0, length=size)
        start, end = byte_range
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        return Response(206, headers, blob=entry.blob, start=start, length=end - start + 1)

    # ------------------------------------------------------------------------------------ control

    async def _control(self, request: Request) -> Response:
        """`/_emulator/...`: the request log and forced failures (never logged, never faulted)."""
        if request.path == "/_emulator/log" and request.method in ("GET", "HEAD"):
            text = json.dumps([e.to_json() for e in self.log.entries()], indent=2)
            return Response(200, [("Content-Type", "application/json")], text.encode())
        if request.path == "/_emulator/failure" and request.method == "POST":
            form = await read_form(request)
            h, status = form.fields.get("hash"), form.fields.get("status")
            count = form.fields.get("count", "1")
            if (
                not h
                or status not in ("error", "timeout", "unrecognised", "internal_error")
                or not count.isdigit()
            ):
                body = b'{"error": "need hash, status (error|timeout|unrecognised|internal_error), count"}'
                return Response(400, [("Content-Type", "application/json")], body)
            self.force_failure(h, status, count=int(count))
            return Response(200, [("Content-Type", "application/json")], b'{"status": "ok"}')
        return werkzeug_page(404)

    def force_failure(self, h: str, status: str, *, count: int = 1) -> None:
        """Make the next `count` processings of file id `h` end in `status`."""
        self.forced_failures.setdefault(h, []).extend([status] * count)
