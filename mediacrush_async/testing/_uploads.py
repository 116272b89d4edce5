"""Uploads: `/api/upload/file`, `/api/upload/url` and `/api/upload/noscript` (`files.py: upload()`).

Route handlers of the app's `ROUTES` table, like `MediaCrushService`'s methods: each takes the service.
"""

from __future__ import annotations

from email.message import Message
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ._blobs import Blob, SpoolWriter
from ._http import (
    HTTPError,
    Request,
    Response,
    UploadedFile,
    nginx_page,
    read_form,
    redirect,
    werkzeug_page,
)
from ._media import ENTRY_TYPES, PY2_EXTENSIONS, hash_from_digest, sniff
from ._objects import BROKEN_OBJECT, file_object
from ._store import FileRecord

if TYPE_CHECKING:
    from ._service import ApiResult, Ctx, MediaCrushService, Payload


def _clean_name(name: str, *, digits: bool) -> str:
    """`upload_file` keeps letters, digits and dots; `upload_url` letters and dots only."""
    return "".join(
        c for c in name if c == "." or (c.isascii() and (c.isalpha() or (digits and c.isdigit())))
    )


def _extension(name: str, content_type: str | None) -> str:
    ext = name.rsplit(".", 1)[1].lower() if "." in name else ""
    return ext or PY2_EXTENSIONS.get((content_type or "").strip().lower(), "bin")


async def _read_upload_form(service: MediaCrushService, request: Request) -> UploadedFile:
    limit = service.config.max_body_size
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        await request.drain()
        raise HTTPError(nginx_page(413))
    runtime = service.require_runtime()
    form = await read_form(
        request,
        file_fields=frozenset({"file"}),
        spool_dir=runtime.spool_dir,
        memory_threshold=service.config.memory_threshold,
        body_limit=limit,
    )
    upload = form.files.get("file")
    if upload is None:
        raise HTTPError(werkzeug_page(400))
    return upload


def _accept(
    service: MediaCrushService,
    request: Request,
    ctx: Ctx,
    *,
    blob: Blob,
    digest: bytes,
    name: str,
    content_type: str | None,
) -> Payload:
    """`files.py: upload()`: rate limit, id, extension, duplicate check, then a new File."""
    cfg = service.config
    store = service.store
    ip = request.client_ip
    ctx.size = blob.size
    if service.upload_budget.add(ip, blob.size):
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
            else file_object(service.config, existing, request.origin)
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
    forced = service.forced_failures.get(h)
    planned = forced.pop(0) if forced else service.faults.processing_outcome(h, attempt)
    if forced is not None and not forced:
        del service.forced_failures[h]
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
    service.require_runtime().pipeline.start(record)
    store.notify()
    return {"hash": h}, 200


async def upload_file(
    service: MediaCrushService, request: Request, ctx: Ctx, _: dict[str, str]
) -> ApiResult:
    if service.config.read_only:
        return {"error": 403}, 403
    upload = await _read_upload_form(service, request)
    name = _clean_name(upload.filename, digits=True)
    return _accept(
        service,
        request,
        ctx,
        blob=upload.blob,
        digest=upload.digest,
        name=name,
        content_type=upload.content_type,
    )


async def upload_noscript(
    service: MediaCrushService, request: Request, ctx: Ctx, params: dict[str, str]
) -> ApiResult:
    result = await upload_file(service, request, ctx, params)
    if isinstance(result, Response):
        return result
    payload, code = result
    if code in (200, 409):
        return redirect(f"{request.origin}/status/{payload['hash']}")
    return {"error": code}, code


async def _fetch(service: MediaCrushService, url: str) -> tuple[Blob, bytes, str, str | None] | int:
    """`URLFile.download`: the bytes, MD5, cleaned name and type, or the error code."""
    cfg = service.config
    runtime = service.require_runtime()
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


async def upload_url(
    service: MediaCrushService, request: Request, ctx: Ctx, _: dict[str, str]
) -> ApiResult:
    if service.config.read_only:
        return {"error": 403}, 403
    form = await read_form(request)
    url = form.fields.get("url")
    if url is None:
        raise HTTPError(werkzeug_page(400))
    fetched = await _fetch(service, url)
    if isinstance(fetched, int):
        return {"error": fetched}, fetched
    blob, digest, name, content_type = fetched
    result = _accept(
        service, request, ctx, blob=blob, digest=digest, name=name, content_type=content_type
    )
    service.store.url_keys[url] = hash_from_digest(digest)
    return result
