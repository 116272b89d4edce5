"""The ASGI application: HTTP routes by table, the API's actions by table, download.php, error bodies.

Routes (`ROUTES`):
    POST /api/1.0/               the API (also /api/1.0 and /api/1.0.N/); other methods: 405 from the "web server"
    GET|HEAD /download.php?guid= restored files (Authorization required; Range, If-Range)
    GET /_emulator/log           the request log as a JSON array (no Authorization; for tests and benchmarks)
    GET /_emulator/faults        the injected faults as a JSON array
    anything else                404 text/plain, as a web server would answer

An API request is handled in this order: read the body (bounded), authenticate, admit it under the rate
limit, maybe inject a 500, maybe delay, then parse and dispatch (`ACTIONS`); a response may then be dropped
mid-body. The app holds the `RecuroService` and nothing of the emulator object (no import circle).
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import httpx

from _servekit._files import Source, select, send_file
from _servekit._http import (
    Body,
    ClientDisconnectedError,
    Receive,
    Scope,
    Send,
    header_map,
    lifespan,
    send_bytes,
    send_text,
)
from recuro_async.testing import _params
from recuro_async.testing._catalog import (
    ACTIONS,
    FILTERS,
    OUTPUT_FORMATS,
    ApiError,
    canonical_action,
    format_named,
)
from recuro_async.testing._log import LogEntry
from recuro_async.testing._media import MIB, Blob, safe_name

if TYPE_CHECKING:
    from recuro_async.testing._lifecycle import Job, Media
    from recuro_async.testing._service import RecuroService

logger = logging.getLogger("recuro_async.testing")

_DRAIN_LIMIT = 64 * MIB
_JSON: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
_QUIRK_KEYS = {
    "file_id": "File_ID",
    "state": "STATE",
    "progress": "Progress",
    "restored_file_url": "Restored_File_URL",
    "error_code": "Error_Code",
    "error_message": "ERROR_MESSAGE",
    "name": "NAME",
    "description": "Description",
    "example_url": "Example_URL",
    "long_name": "Long_Name",
}


class _Request:
    """One HTTP request: its scope, headers (lower-case names), body, peer and arrival time."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = header_map(scope)
        client = scope.get("client")
        self.client = f"{client[0]}:{client[1]}" if client else "unknown"
        self.arrival = anyio.current_time()
        self.on_socket = bool(scope.get(EmulatorApp.SOCKET_KEY))

    def origin(self, configured: str | None) -> str:
        """The origin restored_file_urls are built on: configured, else the one the client used."""
        if configured:
            return configured.rstrip("/")
        scheme = self.scope.get("scheme", "http")
        host = self.headers.get("host")
        if not host:
            server = self.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scheme}://{host}"

    async def read_body(self, limit: int) -> tuple[bytes, bool]:
        """Read the body; return (body, too_large). Oversized bodies are drained (bounded) and dropped."""
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > _DRAIN_LIMIT:
            return b"", True
        return await Body(self.receive).read(limit, drain_limit=_DRAIN_LIMIT)


@attrs.frozen
class _Route:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    handler: str  # the name of an EmulatorApp method taking (request, send)


ROUTES: tuple[_Route, ...] = (
    _Route(re.compile(r"/api/1\.0(\.\d+)?/?"), frozenset({"POST"}), "_api"),
    _Route(re.compile(r"/download\.php"), frozenset({"GET", "HEAD"}), "_download"),
    _Route(re.compile(r"/_emulator/log"), frozenset({"GET", "HEAD"}), "_log"),
    _Route(re.compile(r"/_emulator/faults"), frozenset({"GET", "HEAD"}), "_faults"),
)
_ALLOW_405 = frozenset({"_api", "_download"})  # other methods there: 405 (elsewhere: 404)

Result = tuple[str | None, Any]  # (file_id, JSON result or None for an empty body)
Action = Callable[["RecuroService", "_Request", str, Mapping[str, Any]], Awaitable[Result]]


class EmulatorApp:
    """The ASGI 3 application of a RecuroEmulator, serving its `RecuroService`."""

    SOCKET_KEY = "recuro_emulator.socket"

    def __init__(self, service: RecuroService) -> None:
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        request = _Request(scope, receive)
        try:
            await self._route(request, send)
        except ClientDisconnectedError:
            return

    async def _route(self, request: _Request, send: Send) -> None:
        for route in ROUTES:
            if route.pattern.fullmatch(request.path):
                if request.method in route.methods:
                    await getattr(self, route.handler)(request, send)
                    return
                if route.handler in _ALLOW_405:
                    allow = ", ".join(sorted(route.methods, key=("GET", "HEAD", "POST").index))
                    await send_text(send, 405, "Method Not Allowed", (("allow", allow),))
                    return
                break
        await send_text(send, 404, "Not Found")

    async def _log(self, _request: _Request, send: Send) -> None:
        await send_bytes(send, 200, self._service.request_log.to_json_bytes(), _JSON)

    async def _faults(self, _request: _Request, send: Send) -> None:
        records = [
            {"kind": r.kind, "action": r.action, "file_id": r.file_id, "detail": r.detail}
            for r in self._service.fault_plan.record
        ]
        await send_bytes(send, 200, json.dumps(records).encode(), _JSON)

    # ------------------------------------------------------------ the API

    async def _api(self, request: _Request, send: Send) -> None:
        service = self._service
        cfg = service.config
        body, too_large = await request.read_body(cfg.max_body_bytes)
        params = None if too_large else _params.parse_params(body)
        action_label, file_id_label = _params.labels(params)
        headers: tuple[tuple[str, str], ...] = ()
        payload = b""
        admitted = False
        try:
            owner = self._admit(request, action_label, file_id_label)
            admitted = True
            delay = service.fault_plan.delay(action_label, file_id_label)
            if delay > 0:
                await anyio.sleep(delay)
            action, file_id, result = await self._dispatch(
                request, owner, _params.checked_params(params, too_large, cfg.max_body_bytes)
            )
        except ApiError as exc:
            status = exc.status
            code = cfg.error_codes.get(exc.code, exc.code)  # another reading of a silent document
            payload = _encode({"error_code": code, "error_message": exc.message}, quirks=cfg.quirks)
            headers = _JSON + exc.headers
            admitted = admitted and exc.status != 500
        except Exception:
            logger.exception("the emulator failed on a request", extra={"action": action_label})
            status = 500
            payload = _encode(
                {
                    "error_code": "InternalError",
                    "error_message": "An internal server error occurred.",
                },
                quirks=cfg.quirks,
            )
            headers = _JSON
        else:
            action_label = action
            file_id_label = file_id or file_id_label
            status = 200
            if result is not None:
                payload = _encode(result, quirks=cfg.quirks)
                headers = _JSON
        if too_large:
            headers = (*headers, ("connection", "close"))
        service.request_log.append(
            LogEntry(request.arrival, request.client, action_label, file_id_label, status)
        )
        service.notify()
        cut = (
            service.fault_plan.drop(action_label, file_id_label, len(payload)) if admitted else None
        )
        if cut is None:
            await send_bytes(send, status, payload, headers)
        else:
            await _send_cut(send, status, payload, headers, cut=cut, on_socket=request.on_socket)

    def _admit(self, request: _Request, action: str, file_id: str | None) -> str:
        """Authenticate, count the request against the rate limit, maybe inject a 500; return the key."""
        service = self._service
        owner = _params.authenticate(request.headers, service.config.credentials)
        service.ratelimit.admit(owner, request.arrival)
        if service.fault_plan.server_error(action, file_id):
            raise ApiError(
                "InternalError", "An internal server error occurred (injected fault).", status=500
            )
        if not service.running:
            raise ApiError("InternalError", "The emulator is not running.", status=500)
        return owner

    async def _dispatch(
        self, request: _Request, owner: str, params: Mapping[str, Any]
    ) -> tuple[str, str | None, Any]:
        """Run one action; return (action, file_id, JSON result or None for an empty body)."""
        raw_action = params.get("action")
        if raw_action is None or raw_action == "":
            raise ApiError("ActionMissing", "You need to specify an 'action' in your request.")
        if not isinstance(raw_action, str):
            raise ApiError("ActionInvalid", "'action' must be a string.")
        action = canonical_action(raw_action)
        if action is None:
            raise ApiError(
                "ActionInvalid",
                f"Unknown action '{raw_action[:100]}'; valid actions: {', '.join(ACTIONS)}.",
            )
        file_id, result = await _ACTIONS[action](self._service, request, owner, params)
        return action, file_id, result

    # ------------------------------------------------------------ download.php

    async def _download(self, request: _Request, send: Send) -> None:
        service = self._service
        await request.read_body(0)
        try:
            media, job, blob = self._find_restored(request)
            await self._serve_file(request, send, media, job, blob)
        except ApiError as exc:
            body = _encode({"error_code": exc.code, "error_message": exc.message}, quirks=False)
            service.request_log.append(
                LogEntry(request.arrival, request.client, "download", None, exc.status)
            )
            service.notify()
            await send_bytes(send, exc.status, body, _JSON + exc.headers)

    def _find_restored(self, request: _Request) -> tuple[Media, Job, Blob]:
        """Authenticate a download and find the caller's completed restored file, or raise."""
        service = self._service
        try:
            owner = _params.authenticate(request.headers, service.config.credentials)
        except ApiError as exc:
            raise ApiError(exc.code, exc.message, status=401) from None
        query = urllib.parse.parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
        guids = [v for k, vs in query.items() if k.lower() == "guid" for v in vs]
        if not guids or not guids[0]:
            raise ApiError("GuidMissing", "You need to specify a 'guid' in the download URL.")
        service.check_restored_signature(guids[0], _first(query, "expires"), _first(query, "sig"))
        media = service.media_by_guid(guids[0])
        if media is not None and media.owner == owner:
            job = media.job
            if job is not None and job.guid == guids[0] and job.completed(anyio.current_time()):
                blob = job.restored
                if blob is not None:
                    return media, job, blob
        raise ApiError("RestoredFileNotFound", "No restored file exists at this URL.", status=404)

    async def _serve_file(
        self, request: _Request, send: Send, media: Media, job: Job, blob: Blob
    ) -> None:
        service = self._service
        cfg = service.config
        tag = hashlib.sha256(f"{job.guid}:{blob.size}:{job.last_modified}".encode()).hexdigest()
        etag = f'"{tag[:32]}"'
        modified = email.utils.formatdate(int(job.last_modified), usegmt=True)
        selection = select(
            blob.size,
            request.headers.get("range"),
            request.headers.get("if-range"),
            etag=etag,
            last_modified=modified,
        )
        if selection.status == 416:
            raise ApiError(
                "RangeNotSatisfiable",
                f"The requested range is not satisfiable (size {blob.size}).",
                status=416,
                headers=(
                    ("accept-ranges", "bytes"),
                    ("etag", etag),
                    ("last-modified", modified),
                    ("content-range", f"bytes */{blob.size}"),
                ),
            )
        fmt = format_named(job.settings.output_format)
        name = safe_name(media.name)
        stem = name.rsplit(".", 1)[0] if "." in media.name else name
        filename = (stem or media.file_id.split(".", 1)[0]) + fmt.extension
        headers = [
            ("content-type", fmt.content_type),
            ("etag", etag),
            ("last-modified", modified),
            ("cache-control", "private"),
            ("content-disposition", _content_disposition(filename)),
        ]
        service.request_log.append(
            LogEntry(request.arrival, request.client, "download", media.file_id, selection.status)
        )
        service.notify()
        head = request.method == "HEAD"
        cut = None if head else service.fault_plan.truncate(media.file_id, selection.length)
        await send_file(
            send,
            Source(data=blob.data, path=blob.path),
            selection,
            headers,
            head=head,
            receive=request.receive,
            accept_ranges_on_206=cfg.accept_ranges_on_206,
            cut=cut,
            bandwidth=cfg.bandwidth,
            on_sent=functools.partial(service.count_restored_bytes, media.file_id),
        )
        if cut is not None:
            _drop(request.on_socket)


# ---------------------------------------------------------------- the actions


async def _list_media(
    service: RecuroService, request: _Request, owner: str, _args: Mapping[str, Any]
) -> Result:
    now = anyio.current_time()
    origin = request.origin(service.config.public_url)
    listing = []
    for media in service.owned_media(owner):
        guid = media.restored_guid(now)
        restored = "" if guid is None else service.restored_url(origin, guid)
        listing.append({"file_id": media.file_id, "restored_file_url": restored})
    return None, listing


async def _list_filters(
    _service: RecuroService, _request: _Request, _owner: str, _args: Mapping[str, Any]
) -> Result:
    return None, [{"name": n, "description": d, "example_url": u} for n, (d, u) in FILTERS.items()]


async def _list_output_formats(
    _service: RecuroService, _request: _Request, _owner: str, _args: Mapping[str, Any]
) -> Result:
    return None, [{"name": f.name, "long_name": f.long_name} for f in OUTPUT_FORMATS]


async def _upload_media(
    service: RecuroService, _request: _Request, owner: str, params: Mapping[str, Any]
) -> Result:
    url = _params.required_url(params, "original_file_url")
    username = _params.optional_str(params, "username")
    password = _params.optional_str(params, "password")
    notify_url = _params.url_param(params, "notify_url", required=False)
    media = await service.upload_media(
        owner, url, username=username, password=password, notify_url=notify_url
    )
    return media.file_id, {"file_id": media.file_id}


async def _start_job(
    service: RecuroService, request: _Request, owner: str, params: Mapping[str, Any]
) -> Result:
    file_id = _params.file_id(params)
    settings = _params.job_settings(params)
    notify_url = _params.url_param(params, "notify_url", required=False)
    media = service.lookup(owner, file_id)
    origin = request.origin(service.config.public_url)
    service.start_job(media, settings, notify_url=notify_url, origin=origin)
    return file_id, None


async def _get_progress(
    service: RecuroService, request: _Request, owner: str, params: Mapping[str, Any]
) -> Result:
    file_id = _params.file_id(params)
    snap = service.lookup(owner, file_id).snapshot(anyio.current_time())
    progress: dict[str, Any] = {"state": snap.state, "progress": snap.progress}
    if snap.guid is not None:
        origin = request.origin(service.config.public_url)
        progress["restored_file_url"] = service.restored_url(origin, snap.guid)
    return file_id, progress


async def _delete_media(
    service: RecuroService, _request: _Request, owner: str, params: Mapping[str, Any]
) -> Result:
    file_id = _params.file_id(params)
    try:
        media = service.lookup(owner, file_id)
    except ApiError:
        if service.config.strict_delete:
            raise
        return file_id, None
    await service.delete_media(media)
    return file_id, None


_ACTIONS: Mapping[str, Action] = {
    "ListMedia": _list_media,
    "ListFilters": _list_filters,
    "ListOutputFormats": _list_output_formats,
    "UploadMedia": _upload_media,
    "StartJob": _start_job,
    "GetProgress": _get_progress,
    "DeleteMedia": _delete_media,
}


# ---------------------------------------------------------------- responses


def _first(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _encode(value: Any, *, quirks: bool) -> bytes:
    """Encode a response; with quirks, keys get odd case and progress becomes a string."""
    if quirks:
        value = _quirk(value)
    return json.dumps(value).encode()


def _quirk(value: Any) -> Any:
    if isinstance(value, list):
        return [_quirk(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            shown = format(item, "g") if key == "progress" and isinstance(item, float) else item
            out[_QUIRK_KEYS.get(key, key.upper())] = shown
        return out
    return value


async def _send_cut(
    send: Send,
    status: int,
    body: bytes,
    headers: tuple[tuple[str, str], ...],
    *,
    cut: int,
    on_socket: bool,
) -> None:
    """Start a response announcing the whole body, send `cut` bytes of it, and drop the connection."""
    declared = max(len(body), 1)  # an empty body is announced as one byte, so the drop is visible
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(declared).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    if cut > 0:
        await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
    _drop(on_socket)


def _drop(on_socket: bool) -> None:
    """End an unfinished response: under uvicorn, returning closes the connection mid-body.

    In-process (httpx.ASGITransport) there is no connection to close, so the app raises the error the
    client would see.
    """
    if not on_socket:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body (injected fault)"
        )


def _content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{urllib.parse.quote(filename)}"
    return value
