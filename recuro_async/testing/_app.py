"""The ASGI application: routing, the action dispatch, download.php, error bodies, key-case quirks.

Routes:
    POST /api/1.0/               the API (also /api/1.0 and /api/1.0.N/); other methods: 405 from the "web server"
    GET|HEAD /download.php?guid= restored files (Authorization required; Range, If-Range)
    GET /_emulator/log           the request log as a JSON array (no Authorization; for tests and benchmarks)
    GET /_emulator/faults        the injected faults as a JSON array
    anything else                404 text/plain, as a web server would answer

An API request is handled in this order: read the body (bounded), authenticate, admit it under the rate
limit, maybe inject a 500, maybe delay, then parse and dispatch; a response may then be dropped mid-body.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import hmac
import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread
import httpx

from recuro_async.testing._catalog import (
    ACTIONS,
    FILTERS,
    OUTPUT_FORMATS,
    SCALINGS,
    ApiError,
    canonical_action,
    canonical_filter,
    format_named,
    output_format,
)
from recuro_async.testing._log import LogEntry
from recuro_async.testing._media import MIB, Blob, JobSettings, safe_name

if TYPE_CHECKING:
    from recuro_async.testing._emulator import RecuroEmulator
    from recuro_async.testing._lifecycle import Job, Media

logger = logging.getLogger("recuro_async.testing")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_API_PATH = re.compile(r"/api/1\.0(\.\d+)?/?")
_DRAIN_LIMIT = 64 * MIB
_SEND_CHUNK = MIB
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


class _DisconnectedError(Exception):
    """The client went away before its request body arrived."""


class _Request:
    """One HTTP request: its scope, headers (lower-case names), peer and arrival time."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
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
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _DisconnectedError
            data = message.get("body", b"")
            size += len(data)
            if size <= limit:
                chunks.append(data)
            elif size > _DRAIN_LIMIT:
                return b"", True
            more = message.get("more_body", False)
        if size > limit:
            return b"", True
        return b"".join(chunks), False


class EmulatorApp:
    """The ASGI 3 application of a RecuroEmulator."""

    SOCKET_KEY = "recuro_emulator.socket"

    def __init__(self, emulator: RecuroEmulator) -> None:
        self._emu = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        request = _Request(scope, receive)
        try:
            await self._route(request, send)
        except _DisconnectedError:
            return

    async def _route(self, request: _Request, send: Send) -> None:
        path = request.path
        if _API_PATH.fullmatch(path):
            if request.method != "POST":
                await _send_text(send, 405, "Method Not Allowed", (("allow", "POST"),))
                return
            await self._api(request, send)
        elif path == "/download.php":
            if request.method not in ("GET", "HEAD"):
                await _send_text(send, 405, "Method Not Allowed", (("allow", "GET, HEAD"),))
                return
            await self._download(request, send)
        elif path == "/_emulator/log" and request.method in ("GET", "HEAD"):
            await _send_bytes(send, 200, self._emu.request_log.to_json_bytes(), _JSON)
        elif path == "/_emulator/faults" and request.method in ("GET", "HEAD"):
            records = [
                {"kind": r.kind, "action": r.action, "file_id": r.file_id, "detail": r.detail}
                for r in self._emu.fault_plan.record
            ]
            await _send_bytes(send, 200, json.dumps(records).encode(), _JSON)
        else:
            await _send_text(send, 404, "Not Found")

    # ------------------------------------------------------------ the API

    async def _api(self, request: _Request, send: Send) -> None:
        emu = self._emu
        cfg = emu.config
        body, too_large = await request.read_body(cfg.max_body_bytes)
        params = None if too_large else _parse_params(body)
        action_label, file_id_label = _labels(params)
        headers: tuple[tuple[str, str], ...] = ()
        payload = b""
        admitted = False
        try:
            owner = self._admit(request, action_label, file_id_label)
            admitted = True
            delay = emu.fault_plan.delay(action_label, file_id_label)
            if delay > 0:
                await anyio.sleep(delay)
            action, file_id, result = await self._dispatch(
                request, owner, _checked_params(params, too_large, cfg.max_body_bytes)
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
        emu.request_log.append(
            LogEntry(request.arrival, request.client, action_label, file_id_label, status)
        )
        emu.notify()
        cut = emu.fault_plan.drop(action_label, file_id_label, len(payload)) if admitted else None
        if cut is None:
            await _send_bytes(send, status, payload, headers)
        else:
            await _send_cut(send, status, payload, headers, cut=cut, on_socket=request.on_socket)

    def _admit(self, request: _Request, action: str, file_id: str | None) -> str:
        """Authenticate, count the request against the rate limit, maybe inject a 500; return the key."""
        emu = self._emu
        owner = _authenticate(request.headers, emu.config.credentials)
        emu.ratelimit.admit(owner, request.arrival)
        if emu.fault_plan.server_error(action, file_id):
            raise ApiError(
                "InternalError", "An internal server error occurred (injected fault).", status=500
            )
        if not emu.running:
            raise ApiError("InternalError", "The emulator is not running.", status=500)
        return owner

    async def _dispatch(
        self, request: _Request, owner: str, params: Mapping[str, Any]
    ) -> tuple[str, str | None, Any]:
        """Run one action; return (action, file_id, JSON result or None for an empty body)."""
        emu = self._emu
        now = anyio.current_time()
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
        origin = request.origin(emu.config.public_url)
        if action == "ListMedia":
            listing = [
                {"file_id": m.file_id, "restored_file_url": _restored_or_empty(emu, m, now, origin)}
                for m in emu.owned_media(owner)
            ]
            return action, None, listing
        if action == "ListFilters":
            return (
                action,
                None,
                [{"name": n, "description": d, "example_url": u} for n, (d, u) in FILTERS.items()],
            )
        if action == "ListOutputFormats":
            return (
                action,
                None,
                [{"name": f.name, "long_name": f.long_name} for f in OUTPUT_FORMATS],
            )
        if action == "UploadMedia":
            url = _required_url(params, "original_file_url")
            username = _optional_str(params, "username")
            password = _optional_str(params, "password")
            notify_url = _url(params, "notify_url", required=False)
            media = emu.upload_media(
                owner, url, username=username, password=password, notify_url=notify_url
            )
            return action, media.file_id, {"file_id": media.file_id}
        file_id = _file_id(params)
        if action == "StartJob":
            settings = _job_settings(params)
            notify_url = _url(params, "notify_url", required=False)
            media = emu.lookup(owner, file_id)
            emu.start_job(media, settings, notify_url=notify_url, origin=origin)
            return action, file_id, None
        if action == "GetProgress":
            snap = emu.lookup(owner, file_id).snapshot(now)
            progress: dict[str, Any] = {"state": snap.state, "progress": snap.progress}
            if snap.guid is not None:
                progress["restored_file_url"] = emu.restored_url(origin, snap.guid)
            return action, file_id, progress
        # DeleteMedia
        try:
            media = emu.lookup(owner, file_id)
        except ApiError:
            if emu.config.strict_delete:
                raise
            return action, file_id, None
        await emu.delete_media(media)
        return action, file_id, None

    # ------------------------------------------------------------ download.php

    async def _download(self, request: _Request, send: Send) -> None:
        emu = self._emu
        await request.read_body(0)
        try:
            media, job, blob = self._find_restored(request)
            await self._serve_file(request, send, media, job, blob)
        except ApiError as exc:
            body = _encode({"error_code": exc.code, "error_message": exc.message}, quirks=False)
            emu.request_log.append(
                LogEntry(request.arrival, request.client, "download", None, exc.status)
            )
            emu.notify()
            await _send_bytes(send, exc.status, body, _JSON + exc.headers)

    def _find_restored(self, request: _Request) -> tuple[Media, Job, Blob]:
        """Authenticate a download and find the caller's completed restored file, or raise."""
        emu = self._emu
        try:
            owner = _authenticate(request.headers, emu.config.credentials)
        except ApiError as exc:
            raise ApiError(exc.code, exc.message, status=401) from None
        query = urllib.parse.parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
        guids = [v for k, vs in query.items() if k.lower() == "guid" for v in vs]
        if not guids or not guids[0]:
            raise ApiError("GuidMissing", "You need to specify a 'guid' in the download URL.")
        emu.check_restored_signature(guids[0], _first(query, "expires"), _first(query, "sig"))
        media = emu.media_by_guid(guids[0])
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
        emu = self._emu
        size = blob.size
        tag = hashlib.sha256(f"{job.guid}:{size}:{job.last_modified}".encode()).hexdigest()[:32]
        etag = f'"{tag}"'
        modified = email.utils.formatdate(int(job.last_modified), usegmt=True)
        fmt = format_named(job.settings.output_format)
        stem = (
            safe_name(media.name).rsplit(".", 1)[0] if "." in media.name else safe_name(media.name)
        )
        filename = (stem or media.file_id.split(".", 1)[0]) + fmt.extension
        headers: list[tuple[str, str]] = [
            ("content-type", fmt.content_type),
            ("accept-ranges", "bytes"),
            ("etag", etag),
            ("last-modified", modified),
            ("cache-control", "private"),
            ("content-disposition", _content_disposition(filename)),
        ]
        start, length, status = 0, size, 200
        range_header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if range_header is not None and (
            if_range is None or _if_range_matches(if_range, etag, modified)
        ):
            wanted = _parse_range(range_header, size)
            if wanted == _UNSATISFIABLE:
                kept = tuple(
                    h for h in headers if h[0] in ("accept-ranges", "etag", "last-modified")
                )
                raise ApiError(
                    "RangeNotSatisfiable",
                    f"The requested range is not satisfiable (size {size}).",
                    status=416,
                    headers=(*kept, ("content-range", f"bytes */{size}")),
                )
            if wanted is not None:
                start, end = wanted
                length = end - start + 1
                status = 206
                headers.append(("content-range", f"bytes {start}-{end}/{size}"))
        headers.append(("content-length", str(length)))
        emu.request_log.append(
            LogEntry(request.arrival, request.client, "download", media.file_id, status)
        )
        emu.notify()
        cut = None if request.method == "HEAD" else emu.fault_plan.truncate(media.file_id, length)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        if request.method == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, request.receive, tg.cancel_scope)
            await _stream(
                send,
                blob,
                start=start,
                length=length if cut is None else cut,
                bandwidth=emu.config.bandwidth,
                complete=cut is None,
                on_sent=functools.partial(emu.count_restored_bytes, media.file_id),
            )
            tg.cancel_scope.cancel()
        if cut is not None:
            _drop(request.on_socket)


# ---------------------------------------------------------------- request parsing


def _checked_params(params: dict[str, Any] | None, too_large: bool, limit: int) -> dict[str, Any]:
    if too_large:
        raise ApiError("RequestTooLarge", f"The request body is larger than {limit} bytes.")
    if params is None:
        raise ApiError("RequestInvalid", "The request body must be a JSON object.")
    return params


def _parse_params(body: bytes) -> dict[str, Any] | None:
    """Decode a JSON object body with its keys lower-cased (requests are case-insensitive), or None."""
    try:
        value = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    return {str(k).lower(): v for k, v in value.items()}


def _labels(params: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """The action and file_id to log for a request, as far as its body tells."""
    if params is None:
        return "", None
    raw = params.get("action")
    action = (canonical_action(raw) or raw[:100]) if isinstance(raw, str) else ""
    file_id = params.get("file_id")
    return action, file_id[:200] if isinstance(file_id, str) and file_id else None


def _authenticate(headers: Mapping[str, str], credentials: Mapping[str, str]) -> str:
    """Return the API key of a valid `Authorization: KEY:SECRET` header, else raise."""
    raw = headers.get("authorization", "").strip()
    if not raw:
        raise ApiError(
            "AuthorizationMissing",
            "You need to send an Authorization header with your API key and secret in 'ApiKey:ApiSecret' format.",
        )
    key, sep, secret = raw.partition(":")
    expected = credentials.get(key.strip())
    if (
        not sep
        or expected is None
        or not hmac.compare_digest(expected.encode(), secret.strip().encode())
    ):
        raise ApiError(
            "AuthorizationInvalid",
            "The API key and secret in the Authorization header are not valid.",
        )
    return key.strip()


def _file_id(params: Mapping[str, Any]) -> str:
    value = params.get("file_id")
    if value is None or value == "":
        raise ApiError("FileIdMissing", "You need to specify a 'file_id' in your request.")
    if not isinstance(value, str):
        raise ApiError("FileIdInvalid", "'file_id' must be a string.")
    return value


def _optional_str(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(f"{_camel(key)}Invalid", f"'{key}' must be a string.")
    return value


def _required_url(params: Mapping[str, Any], key: str) -> str:
    url = _url(params, key, required=True)
    if url is None:
        raise ApiError(f"{_camel(key)}Missing", f"You need to specify a '{key}' in your request.")
    return url


def _url(params: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise ApiError(
                f"{_camel(key)}Missing", f"You need to specify a '{key}' in your request."
            )
        return None
    if not isinstance(value, str):
        raise ApiError(f"{_camel(key)}Invalid", f"'{key}' must be a string.")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(value) > 8192:
        raise ApiError(f"{_camel(key)}Invalid", f"'{key}' must be an http or https URL.")
    return value


def _job_settings(params: Mapping[str, Any]) -> JobSettings:
    fmt_value = params.get("output_format")
    allowed_formats = ", ".join(f.name for f in OUTPUT_FORMATS)
    if fmt_value is None or fmt_value == "":
        raise ApiError(
            "OutputFormatMissing", f"You need to specify an 'output_format' ({allowed_formats})."
        )
    if not isinstance(fmt_value, str) or output_format(fmt_value) is None:
        raise ApiError(
            "OutputFormatInvalid",
            f"Unknown output_format {str(fmt_value)[:100]!r}; valid: {allowed_formats}.",
        )
    filters = params.get("filters")
    if filters is None:
        raise ApiError(
            "FiltersMissing", "You need to specify 'filters' (an array of filter names)."
        )
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise ApiError("FiltersInvalid", "'filters' must be an array of strings.")
    for name in filters:
        if canonical_filter(name) is None:
            raise ApiError(
                "FiltersInvalid",
                f"Unknown filter {name[:100]!r}; valid filters: {', '.join(FILTERS)}.",
            )
    scaling = params.get("output_scaling")
    if scaling is not None and scaling != "":
        valid = (isinstance(scaling, str) and scaling.strip() in SCALINGS) or (
            isinstance(scaling, int) and not isinstance(scaling, bool) and str(scaling) in SCALINGS
        )
        if not valid:
            raise ApiError(
                "OutputScalingInvalid", "'output_scaling' must be '1080' (HD) or '2160' (4K)."
            )
        scaling = str(scaling).strip()
    return JobSettings.of(fmt_value, filters, scaling or None)


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


# ---------------------------------------------------------------- responses

_JSON: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)


def _first(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _restored_or_empty(emu: RecuroEmulator, media: Media, now: float, origin: str) -> str:
    guid = media.restored_guid(now)
    return "" if guid is None else emu.restored_url(origin, guid)


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


async def _send_bytes(
    send: Send, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()
) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_text(
    send: Send, status: int, text: str, headers: tuple[tuple[str, str], ...] = ()
) -> None:
    await _send_bytes(
        send, status, text.encode(), (("content-type", "text/plain; charset=utf-8"), *headers)
    )


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


async def _stream(
    send: Send,
    blob: Blob,
    *,
    start: int,
    length: int,
    bandwidth: float | None,
    complete: bool,
    on_sent: Callable[[int], object] | None = None,
) -> None:
    """Send `length` bytes of `blob` from `start`, paced to `bandwidth` bytes/s; end the body if `complete`.

    `on_sent(n)` is called after each chunk of `n` bytes is handed to the server.
    """
    chunk = _SEND_CHUNK if bandwidth is None else max(1, min(_SEND_CHUNK, int(bandwidth / 20)))
    began = anyio.current_time()
    sent = 0
    in_memory = blob.data or b""
    handle = None if blob.path is None else await anyio.open_file(blob.path, "rb")
    try:
        if handle is not None:
            await handle.seek(start)
        while sent < length:
            n = min(chunk, length - sent)
            if handle is not None:
                data = await handle.read(n)
            else:
                data = in_memory[start + sent : start + sent + n]
            if not data:
                break
            if bandwidth is not None:
                await anyio.sleep_until(began + (sent + len(data)) / bandwidth)
            sent += len(data)
            last = complete and sent >= length
            await send({"type": "http.response.body", "body": data, "more_body": not last})
            if on_sent is not None:
                on_sent(len(data))
        if complete and length == 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if handle is not None:
            with anyio.CancelScope(shield=True):
                await handle.aclose()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def _content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{urllib.parse.quote(filename)}"
    return value


def _if_range_matches(value: str, etag: str, last_modified: str) -> bool:
    """If-Range: a strong ETag must equal ours; a date must equal Last-Modified; weak tags never match."""
    value = value.strip()
    if value.startswith("W/"):
        return False
    if value.startswith('"'):
        return value == etag
    try:
        return email.utils.parsedate_to_datetime(value) == email.utils.parsedate_to_datetime(
            last_modified
        )
    except (TypeError, ValueError):
        return False


_UNSATISFIABLE = (-1, -1)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """Parse a single `bytes=` range: (first, last), _UNSATISFIABLE, or None to ignore the header."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    if match is None:
        return None  # malformed or several ranges: answer the whole file (RFC 9110 allows ignoring Range)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return _UNSATISFIABLE
        return max(0, size - suffix), size - 1
    begin = int(first)
    end = int(last) if last else size - 1
    if last and end < begin:
        return None
    if begin >= size:
        return _UNSATISFIABLE
    return begin, min(end, size - 1)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
