"""The MediaCrush wire protocol, sans I/O: build requests, read replies, map statuses to errors.

Nothing here touches a socket. Builders return `WireRequest` values (method, path, query, form, headers);
parsers take a reply's status, headers and body and return models or raise. `decode()` is the one place
that unwraps X-CORS-Status replies (HTTP 200 with the real code in `x-status`) and `raise_for_status()`
the one place that maps a status to its exception (through the table in `_errormap`), so both status modes give identical results (MEDIACRUSH.md 2).
The multipart framing of uploads is here too; the client streams the file between its head and tail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ._constants import CORS_HEADER, MAX_LIST_CHARS
from ._converter import BlobObject, structure, structure_as
from ._enums import ProcessingStatus
from ._errormap import status_error
from ._errors import MediaCrushAPIError, ResponseFormatError
from ._models import Album, File, Status, UploadResult

__all__ = [
    "MAX_URLS_PER_REQUEST",
    "Reply",
    "WireRequest",
    "album_create_request",
    "decode",
    "delete_request",
    "effective_status",
    "error_for",
    "exists_request",
    "flags_request",
    "info_many_requests",
    "info_request",
    "multipart_frame",
    "parse_album_create",
    "parse_delete",
    "parse_exists",
    "parse_flags",
    "parse_info",
    "parse_info_many",
    "parse_status",
    "parse_status_many",
    "parse_upload",
    "parse_url_info",
    "raise_for_status",
    "set_flags_request",
    "split_list",
    "status_many_requests",
    "status_request",
    "upload_file_request",
    "upload_url_request",
    "url_info_requests",
]

# `/api/url/info` takes a POST form, so URL length is no limit; keep each reply a modest size.
MAX_URLS_PER_REQUEST: Final = 100

_EXCERPT_CHARS: Final = 160
_TAGS: Final = re.compile(r"<[^>]*>")
_SPACES: Final = re.compile(r"\s+")
_HEADER_UNSAFE: Final = {'"': "%22", "\r": "%0D", "\n": "%0A"}


@attrs.frozen
class WireRequest:
    """One HTTP request, as data.

    Attributes:
        route: the client method it serves (for logs and error messages).
        method: the HTTP method.
        path: the path below the base URL, starting with "/".
        params: query parameters.
        form: url-encoded form fields (POST), or empty.
        headers: request headers.
    """

    route: str
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Reply:
    """A decoded reply.

    Attributes:
        status: the real status (from `x-status` when the server wrapped it).
        data: the decoded JSON (without `x-status`), or None when the body is not JSON.
        excerpt: the start of a non-JSON body as plain text, for error messages.
    """

    status: int
    data: Any = None
    excerpt: str = ""


def _headers(*, cors_status: bool) -> tuple[tuple[str, str], ...]:
    base: tuple[tuple[str, str], ...] = (("Accept", "application/json"),)
    return (*base, (CORS_HEADER, "1")) if cors_status else base


def _get(route: str, path: str, *, cors_status: bool, **params: str) -> WireRequest:
    return WireRequest(
        route, "GET", path, params=tuple(params.items()), headers=_headers(cors_status=cors_status)
    )


def _post(
    route: str, path: str, form: Iterable[tuple[str, str]], *, cors_status: bool
) -> WireRequest:
    return WireRequest(
        route, "POST", path, form=tuple(form), headers=_headers(cors_status=cors_status)
    )


def split_list(
    items: list[str], *, max_chars: int = MAX_LIST_CHARS, max_items: int | None = None
) -> list[list[str]]:
    """Split items into runs whose comma-joined, URL-encoded length stays under `max_chars`."""
    chunks: list[list[str]] = []
    current: list[str] = []
    length = 0
    for item in items:
        cost = len(item) + (3 if current else 0)  # "," is sent as "%2C"
        full = max_items is not None and len(current) >= max_items
        if current and (length + cost > max_chars or full):
            chunks.append(current)
            current, length, cost = [], 0, len(item)
        current.append(item)
        length += cost
    if current:
        chunks.append(current)
    return chunks


def info_request(hash_: str, *, cors_status: bool) -> WireRequest:
    """`GET /api/<hash>`: one file or album object."""
    return _get("info", f"/api/{hash_}", cors_status=cors_status)


def info_many_requests(hashes: list[str], *, cors_status: bool) -> list[WireRequest]:
    """`GET /api/info?list=a,b`, split so that no URL gets too long."""
    return [
        _get("info_many", "/api/info", cors_status=cors_status, list=",".join(chunk))
        for chunk in split_list(hashes)
    ]


def exists_request(hash_: str, *, cors_status: bool) -> WireRequest:
    """`GET /api/<hash>/exists`."""
    return _get("exists", f"/api/{hash_}/exists", cors_status=cors_status)


def status_request(hash_: str, *, cors_status: bool) -> WireRequest:
    """`GET /api/<hash>/status`."""
    return _get("status", f"/api/{hash_}/status", cors_status=cors_status)


def status_many_requests(hashes: list[str], *, cors_status: bool) -> list[WireRequest]:
    """`GET /api/status?list=a,b`, split so that no URL gets too long."""
    return [
        _get("status_many", "/api/status", cors_status=cors_status, list=",".join(chunk))
        for chunk in split_list(hashes)
    ]


def flags_request(hash_: str, *, cors_status: bool) -> WireRequest:
    """`GET /api/<hash>/flags`."""
    return _get("get_flags", f"/api/{hash_}/flags", cors_status=cors_status)


def set_flags_request(hash_: str, flags: Mapping[str, bool], *, cors_status: bool) -> WireRequest:
    """`POST /api/<hash>/flags` with each flag sent as exactly "true" or "false" (MEDIACRUSH.md 3)."""
    form = [(name, "true" if value else "false") for name, value in flags.items()]
    return _post("set_flags", f"/api/{hash_}/flags", form, cors_status=cors_status)


def delete_request(hash_: str, *, cors_status: bool) -> WireRequest:
    """`DELETE /api/<hash>` (the old GET `/api/<hash>/delete` only redirects to an HTML page)."""
    return WireRequest(
        "delete", "DELETE", f"/api/{hash_}", headers=_headers(cors_status=cors_status)
    )


def album_create_request(hashes: list[str], *, cors_status: bool) -> WireRequest:
    """`POST /api/album/create` with `list=a,b,...`."""
    return _post(
        "create_album", "/api/album/create", [("list", ",".join(hashes))], cors_status=cors_status
    )


def upload_url_request(url: str, *, cors_status: bool) -> WireRequest:
    """`POST /api/upload/url` with `url=...`."""
    return _post("upload_url", "/api/upload/url", [("url", url)], cors_status=cors_status)


def url_info_requests(urls: list[str], *, cors_status: bool) -> list[WireRequest]:
    """`POST /api/url/info` with `list=u1,u2`, a bounded number of URLs per request."""
    return [
        _post("url_info", "/api/url/info", [("list", ",".join(chunk))], cors_status=cors_status)
        for chunk in split_list(urls, max_chars=1 << 30, max_items=MAX_URLS_PER_REQUEST)
    ]


def _quote_header_value(value: str) -> str:
    return "".join(_HEADER_UNSAFE.get(ch, ch) for ch in value)


def multipart_frame(*, boundary: str, filename: str, content_type: str) -> tuple[bytes, bytes]:
    """The bytes before and after the file in a one-part `multipart/form-data` body (field `file`)."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{_quote_header_value(filename)}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail


def upload_file_request(*, boundary: str, content_length: int, cors_status: bool) -> WireRequest:
    """`POST /api/upload/file`; the caller streams the body (head, file bytes, tail) of `content_length`."""
    headers = (
        *_headers(cors_status=cors_status),
        ("Content-Type", f"multipart/form-data; boundary={boundary}"),
        ("Content-Length", str(content_length)),
    )
    return WireRequest("upload_file", "POST", "/api/upload/file", headers=headers)


# ---------------------------------------------------------------- replies


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _excerpt(body: bytes) -> str:
    text = body[: _EXCERPT_CHARS * 8].decode("utf-8", errors="replace")
    text = _SPACES.sub(" ", _TAGS.sub(" ", text)).strip()
    return text[:_EXCERPT_CHARS]


def _x_status(value: object, route: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ResponseFormatError(
            "x-status must be an HTTP status code",
            path_errors=[f"got {value!r} @ $.x-status"],
            route=route,
        )
    return value


def decode(status_code: int, body: bytes, *, route: str) -> Reply:
    """Decode a reply; a 200 carrying `x-status` (X-CORS-Status mode) takes that as its real status."""
    try:
        data = json.loads(body, parse_constant=_reject_constant) if body.strip() else None
    except (ValueError, RecursionError):
        return Reply(status_code, None, _excerpt(body))
    if status_code == 200 and isinstance(data, dict) and "x-status" in data:
        data = dict(data)
        status_code = _x_status(data.pop("x-status"), route)
    return Reply(status_code, data, "" if data is not None else _excerpt(body))


def effective_status(status_code: int, body: bytes) -> int:
    """The real status of a reply (for retry decisions); never raises."""
    try:
        return decode(status_code, body, route="").status
    except ResponseFormatError:
        return status_code


def _error_value(data: object) -> object:
    return data.get("error") if isinstance(data, dict) else None


def error_for(reply: Reply, *, route: str) -> MediaCrushAPIError:
    """The exception for an error reply, from the error table: JSON bodies and HTML pages alike."""
    return status_error(
        reply.status, error=_error_value(reply.data), route=route, body_excerpt=reply.excerpt
    )


def raise_for_status(reply: Reply, *, route: str) -> None:
    """Raise the mapped error unless the status is 2xx."""
    if not 200 <= reply.status <= 299:
        raise error_for(reply, route=route)


def _success(status_code: int, body: bytes, *, route: str, accept: tuple[int, ...] = ()) -> Reply:
    reply = decode(status_code, body, route=route)
    if reply.status not in accept:
        raise_for_status(reply, route=route)
    if reply.data is None:
        raise ResponseFormatError(
            "expected a JSON body", path_errors=[f"got {reply.excerpt[:60]!r} @ $"], route=route
        )
    return reply


def _object(data: Any, *, route: str, what: str = "object") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ResponseFormatError(
            f"expected a JSON {what}", path_errors=[f"got {type(data).__name__} @ $"], route=route
        )
    return data


def _with_hash(obj: Any, hash_: str | None) -> Any:
    if isinstance(obj, dict) and hash_ is not None and obj.get("hash") is None:
        return {**obj, "hash": hash_}
    return obj


def _blob_or_none(obj: Any, hash_: str | None, *, route: str) -> File | Album | None:
    # A missing file reads as null; an album whose files are all gone as `[{"error": 404}, 404]`
    # (MEDIACRUSH.md 3, issue #356): anything that is not an object means "no object".
    if not isinstance(obj, dict):
        return None
    blob: File | Album = structure(_with_hash(obj, hash_), BlobObject, route=route)
    return blob


def _file_or_none(obj: Any, hash_: str | None, *, route: str) -> File | None:
    if not isinstance(obj, dict):
        return None
    return structure_as(_with_hash(obj, hash_), File, route=route)


def parse_info(status_code: int, body: bytes, *, hash_: str) -> File | Album:
    """`GET /api/<hash>`: a file or an album, chosen by `type`."""
    data = _object(_success(status_code, body, route="info").data, route="info")
    blob = _blob_or_none(data, hash_, route="info")
    if blob is None:  # pragma: no cover - _object() guarantees a dict
        raise ResponseFormatError("expected a file or album object", route="info")
    return blob


def parse_info_many(
    status_code: int, body: bytes, *, hashes: list[str]
) -> dict[str, File | Album | None]:
    """`GET /api/info?list=`: every asked hash, with None for unknown, failed or emptied ones."""
    data = _object(_success(status_code, body, route="info_many").data, route="info_many")
    return {h: _blob_or_none(data.get(h), h, route="info_many") for h in hashes}


def parse_exists(status_code: int, body: bytes) -> bool:
    """`GET /api/<hash>/exists`: the server answers 404 `{"exists": false}`, which is an answer, not an error."""
    reply = decode(status_code, body, route="exists")
    if reply.status == 404 and isinstance(reply.data, dict):
        return False
    data = _object(_success(status_code, body, route="exists").data, route="exists")
    if "exists" not in data:
        raise ResponseFormatError(
            "expected an `exists` key", path_errors=["missing @ $.exists"], route="exists"
        )
    return structure_as(data["exists"], bool, route="exists")


def _status_of(obj: dict[str, Any], hash_: str, *, route: str) -> Status:
    raw = obj.get("status")
    if not isinstance(raw, str):
        raise ResponseFormatError(
            "expected a status string", path_errors=[f"got {raw!r} @ $.status"], route=route
        )
    # `/api/<h>/status` puts the object under the hash, `/api/status?list=` under "file".
    named = obj.get("hash")
    key = named if isinstance(named, str) else hash_
    file_obj = obj.get("file", obj.get(key, obj.get(hash_)))
    return Status(
        status=ProcessingStatus(raw),
        hash=hash_,
        file=_file_or_none(file_obj, hash_, route=route),
        raw_status=raw,
    )


def parse_status(status_code: int, body: bytes, *, hash_: str) -> Status:
    """`GET /api/<hash>/status`: the status, and the file object once the server knows its type."""
    data = _object(_success(status_code, body, route="status").data, route="status")
    return _status_of(data, hash_, route="status")


def parse_status_many(
    status_code: int, body: bytes, *, hashes: list[str]
) -> dict[str, Status | None]:
    """`GET /api/status?list=`: every asked hash, with None for unknown ones."""
    data = _object(_success(status_code, body, route="status_many").data, route="status_many")
    result: dict[str, Status | None] = {}
    for h in hashes:
        item = data.get(h)
        result[h] = _status_of(item, h, route="status_many") if isinstance(item, dict) else None
    return result


def parse_flags(status_code: int, body: bytes, *, route: str = "get_flags") -> dict[str, bool]:
    """`GET`/`POST /api/<hash>/flags`: `{"flags": {...}}`, every flag of the file."""
    data = _object(_success(status_code, body, route=route).data, route=route)
    if "flags" not in data:
        raise ResponseFormatError(
            "expected a `flags` key", path_errors=["missing @ $.flags"], route=route
        )
    return dict(structure(data["flags"], dict[str, bool], route=route))


def parse_delete(status_code: int, body: bytes) -> None:
    """`DELETE /api/<hash>`: any 2xx is success (`{"status": "success"}`; the document misspells it)."""
    raise_for_status(decode(status_code, body, route="delete"), route="delete")


def parse_album_create(status_code: int, body: bytes) -> str:
    """`POST /api/album/create`: `{"hash": albumhash}`."""
    data = _object(_success(status_code, body, route="create_album").data, route="create_album")
    return structure_as(data.get("hash"), str, route="create_album")


def parse_upload(
    status_code: int, body: bytes, *, route: str, expected_hash: str | None = None
) -> UploadResult:
    """Upload replies: 200 `{"hash"}`; 409 `{"error": 409, "hash": h, h: object}` is a success too.

    The object beside a 409 is not always a file object: after a failed processing it was
    `[{"error": 404}, 404]` (issue #356), so anything that does not parse as a file gives `file=None`.
    """
    reply = _success(status_code, body, route=route, accept=(409,))
    data = _object(reply.data, route=route)
    hash_ = structure_as(data.get("hash", expected_hash), str, route=route)
    duplicate = reply.status == 409
    file: File | None
    try:
        file = _file_or_none(data.get(hash_), hash_, route=route)
    except ResponseFormatError:
        file = None
    return UploadResult(hash=hash_, already_uploaded=duplicate, file=file)


def parse_url_info(status_code: int, body: bytes, *, urls: list[str]) -> dict[str, File | None]:
    """`POST /api/url/info`: each asked URL with its file object, or None when never uploaded by URL."""
    data = _object(_success(status_code, body, route="url_info").data, route="url_info")
    result: dict[str, File | None] = {}
    for url in urls:
        blob = _blob_or_none(data.get(url), None, route="url_info")
        result[url] = blob if isinstance(blob, File) else None
    return result
