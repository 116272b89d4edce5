"""The server's HTTP shapes: requests, form bodies, responses (JSON as Flask 0.10 wrote it, HTML pages).

Range answers and body streaming are the serving kit's (`_servekit`); this module says what Flask,
Werkzeug and nginx sent."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import attrs

from _servekit._files import Source, stream
from _servekit._http import Body, ClientDisconnectedError, Receive, Scope, Send, encode_headers

from ._blobs import Blob, SpoolWriter
from ._faults import NO_FAULT, FaultDecision, InjectedDrop
from ._multipart import MultipartError, MultipartParser, PartInfo, boundary_of

#: Non-file form fields are kept in memory up to this many bytes in total.
FORM_MEMORY_LIMIT = 16 * 1024 * 1024
LOOPBACK_PROXIES = ("127.0.0.1", "127.0.0.2")
#: At most this much of an unread or refused body is read and dropped before answering.
DRAIN_CAP = 256 * 1024 * 1024

# ------------------------------------------------------------------------------------------- pages

_WERKZEUG = {
    400: (
        "Bad Request",
        "The browser (or proxy) sent a request that this server could not understand.",
    ),
    404: (
        "Not Found",
        (
            "The requested URL was not found on the server.  If you entered the URL manually "
            "please check your spelling and try again."
        ),
    ),
    405: ("Method Not Allowed", "The method is not allowed for the requested URL."),
    413: ("Request Entity Too Large", "The data value transmitted exceeds the capacity limit."),
}

_NGINX_REASONS = {
    404: "Not Found",
    413: "Request Entity Too Large",
    416: "Requested Range Not Satisfiable",
}

ERROR_PAGE_500 = (
    "<!doctype html>\n<html>\n<head><title>MediaCrush - Error</title></head>\n<body>\n"
    "<h1>Something went wrong</h1>\n<p>An error occurred while processing your request. "
    "Please try again later.</p>\n</body>\n</html>\n"
)


@attrs.define
class Response:
    """An HTTP response: a status, headers and a body in memory or a slice of a blob.

    Attributes:
        status: HTTP status sent.
        headers: Header pairs.
        body: The body, when in memory.
        blob: The blob to stream from, for file downloads.
        start: First byte of the blob to send.
        length: Number of blob bytes to send.
        api_status: The status the API meant (differs from `status` under `X-CORS-Status`).
    """

    status: int
    headers: list[tuple[str, str]] = attrs.Factory(list)
    body: bytes = b""
    blob: Blob | None = None
    start: int = 0
    length: int = 0
    api_status: int | None = None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive)."""
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


class HTTPError(Exception):
    """Raised by a handler to answer with `response` (an HTML error page, typically)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def html(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """An HTML response."""
    return Response(
        status,
        [("Content-Type", "text/html; charset=utf-8"), *(headers or [])],
        text.encode("utf-8"),
    )


def werkzeug_page(status: int) -> Response:
    """Werkzeug's own HTML error page (what Flask sent for a missing form field: 400)."""
    title, text = _WERKZEUG[status]
    return html(
        status,
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
        f"<title>{status} {title}</title>\n<h1>{title}</h1>\n<p>{text}</p>\n",
    )


def nginx_page(status: int) -> Response:
    """nginx's HTML error page (static files, and the body-size limit's 413)."""
    title = f"{status} {_NGINX_REASONS[status]}"
    return html(
        status,
        f'<html>\r\n<head><title>{title}</title></head>\r\n<body bgcolor="white">\r\n'
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    )


def error_page_500() -> Response:
    """The app's `error.html` (any uncaught exception)."""
    return html(500, ERROR_PAGE_500)


def redirect(location: str, status: int = 302) -> Response:
    """A redirect as Werkzeug wrote it."""
    body = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>Redirecting...</title>\n'
        "<h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: "
        f'<a href="{location}">{location}</a>.  If not click the link.'
    )
    return html(status, body, [("Location", location)])


def dumps(obj: Any, *, pretty: bool) -> str:
    """Serialise like Flask 0.10's `jsonify` on Python 2: sorted keys, indent 2 with `", "` separators.

    With an indent, Python 2's separators leave a space at the end of every line that ends in a comma
    (MEDIACRUSH.md section 2); compact output keeps `", "` and `": "`. No trailing newline.
    """
    return json.dumps(
        obj,
        indent=2 if pretty else None,
        sort_keys=True,
        separators=(", ", ": "),
        ensure_ascii=True,
    )


# ----------------------------------------------------------------------------------------- request


ClientGone = ClientDisconnectedError
"""The client disconnected before sending its whole body."""


class Request:
    """The parts of an ASGI HTTP request the handlers need."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.method: str = str(scope["method"]).upper()
        self.path: str = str(scope["path"])
        self.scheme: str = str(scope.get("scheme", "http"))
        self.headers: dict[str, str] = {}
        for raw_key, raw_value in scope.get("headers", []):
            key = bytes(raw_key).decode("latin-1").lower()
            self.headers.setdefault(key, bytes(raw_value).decode("latin-1"))
        self.query: dict[str, str] = {}
        for key, value in parse_qsl(
            bytes(scope.get("query_string", b"")).decode("latin-1"), keep_blank_values=True
        ):
            self.query.setdefault(key, value)
        client = scope.get("client")
        self.peer: str = str(client[0]) if client else ""
        server = scope.get("server")
        self._server = (str(server[0]), server[1]) if server else ("localhost", None)
        self._body = Body(receive)

    @property
    def client_ip(self) -> str:
        """`network.py: get_ip`: the peer, or `X-Real-IP` when the peer is 127.0.0.1 or 127.0.0.2."""
        real = self.headers.get("x-real-ip")
        if self.peer in LOOPBACK_PROXIES and real is not None:
            return real
        return self.peer

    @property
    def origin(self) -> str:
        """`scheme://host[:port]` as the client addressed this server."""
        host = self.headers.get("host")
        if not host:
            name, port = self._server
            host = name if port is None else f"{name}:{port}"
        return f"{self.scheme}://{host}"

    @property
    def content_length(self) -> int | None:
        """The declared body length, if any and valid."""
        value = self.headers.get("content-length", "")
        return int(value) if value.isdigit() else None

    async def read_chunk(self, limit: int | None = None) -> bytes | None:
        """The next chunk of the body (None at its end); past `limit` bytes, nginx's HTML 413.

        Before refusing, the rest of the body is read and dropped (as nginx's lingering close
        does), so the client gets to read the 413 instead of a reset connection.
        """
        chunk = await self._body.chunk()
        if chunk is None:
            return None
        if limit is not None and self._body.received > limit:
            await self.drain()
            raise HTTPError(nginx_page(413))
        return chunk

    async def drain(self, cap: int = DRAIN_CAP) -> None:
        """Read and drop what is left of the body, up to `cap` bytes."""
        await self._body.drain(cap)


@attrs.define
class UploadedFile:
    """A file part of a multipart body.

    Attributes:
        filename: The name the client gave.
        content_type: The part's Content-Type, if any.
        blob: The bytes.
        digest: Their MD5.
    """

    filename: str
    content_type: str | None
    blob: Blob
    digest: bytes


@attrs.define
class Form:
    """A parsed form body: fields (first value of each name, in order) and kept file parts."""

    fields: dict[str, str] = attrs.Factory(dict)
    files: dict[str, UploadedFile] = attrs.Factory(dict)

    def discard(self) -> None:
        """Delete the files' bytes."""
        for f in self.files.values():
            f.blob.discard()
        self.files.clear()


class _Discard:
    def write(self, data: bytes, /) -> None:
        pass

    def end(self) -> None:
        pass


class _FieldSink:
    def __init__(self, form: Form, name: str, budget: list[int]) -> None:
        self._form = form
        self._name = name
        self._budget = budget
        self._data = bytearray()

    def write(self, data: bytes, /) -> None:
        self._budget[0] -= len(data)
        if self._budget[0] < 0:
            raise HTTPError(werkzeug_page(413))
        self._data += data

    def end(self) -> None:
        self._form.fields.setdefault(self._name, self._data.decode("utf-8", "replace"))


class _FileSink:
    def __init__(self, form: Form, info: PartInfo, writer: SpoolWriter) -> None:
        self._form = form
        self._info = info
        self._writer = writer
        self.finished = False

    def write(self, data: bytes, /) -> None:
        self._writer.write(data)

    def end(self) -> None:
        self.finished = True
        self._form.files[self._info.name or ""] = UploadedFile(
            filename=self._info.filename or "",
            content_type=self._info.content_type,
            blob=self._writer.finish(),
            digest=self._writer.md5.digest(),
        )

    def abort(self) -> None:
        if not self.finished:
            self._writer.abort()


async def read_form(
    request: Request,
    *,
    file_fields: frozenset[str] = frozenset(),
    spool_dir: Path | None = None,
    memory_threshold: int = 4 * 1024 * 1024,
    body_limit: int | None = None,
) -> Form:
    """Parse an urlencoded or multipart body (Flask's `request.form`/`request.files`).

    Only file parts named in `file_fields` are kept (the first of each name); they spill to
    `spool_dir` past `memory_threshold`. A malformed body gives Werkzeug's HTML 400.
    """
    form = Form()
    ctype = request.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    if mime == "application/x-www-form-urlencoded":
        data = bytearray()
        while (chunk := await request.read_chunk(body_limit)) is not None:
            data += chunk
            if len(data) > FORM_MEMORY_LIMIT:
                raise HTTPError(werkzeug_page(413))
        for key, value in parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True):
            form.fields.setdefault(key, value)
        return form
    boundary = boundary_of(ctype) if mime == "multipart/form-data" else None
    if boundary is None:
        while await request.read_chunk(body_limit) is not None:
            pass
        return form

    budget = [FORM_MEMORY_LIMIT]
    open_files: list[_FileSink] = []

    def on_part(info: PartInfo) -> _FieldSink | _FileSink | _Discard:
        if info.name is None:
            return _Discard()
        if info.filename is None:
            return _FieldSink(form, info.name, budget)
        if (
            info.name in file_fields
            and info.name not in form.files
            and all(s._info.name != info.name for s in open_files)
        ):
            sink = _FileSink(form, info, SpoolWriter(spool_dir, memory_threshold))
            open_files.append(sink)
            return sink
        return _Discard()

    parser = MultipartParser(boundary, on_part)
    try:
        while (chunk := await request.read_chunk(body_limit)) is not None:
            parser.feed(chunk)
        parser.close()
    except MultipartError as exc:
        for sink in open_files:
            sink.abort()
        form.discard()
        raise HTTPError(werkzeug_page(400)) from exc
    except BaseException:
        for sink in open_files:
            sink.abort()
        form.discard()
        raise
    return form


def http_date(timestamp: float) -> str:
    """An RFC 7231 date."""
    return email.utils.formatdate(timestamp, usegmt=True)


# ------------------------------------------------------------------------------------------ sending


async def send_response(
    send: Send,
    response: Response,
    *,
    head_only: bool = False,
    fault: FaultDecision = NO_FAULT,
    bandwidth: int | None = None,
) -> None:
    """Send `response`, applying the drop, truncation and bandwidth faults (the serving kit's hooks)."""
    headers = encode_headers(response.headers)
    blob = response.blob
    total = response.length if blob is not None else len(response.body)
    if not any(k == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(total).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if head_only:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    cut: int | None = None
    if fault.drop:
        cut = total // 2
    elif fault.truncate_at is not None and blob is not None:
        cut = int(total * fault.truncate_at)
    if blob is None:
        source, start = Source(data=response.body), 0
    else:
        source, start = Source(data=blob.data, path=blob.path), response.start
    await stream(send, source, start, total, cut=cut, bandwidth=bandwidth)
    if cut is not None:
        raise InjectedDrop("connection dropped by the emulator's fault plan")
