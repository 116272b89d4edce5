"""The ASGI app: every route of MEDIACRUSH.md section 3, with the server's bodies, codes and quirks.

No web framework: a table of routes (`ROUTES`) naming the service's handlers, which return
`(payload, code)` for API routes, and one wrapper doing what the server's `json_output` and `cors`
decorators did (sorted, indented JSON; JSONP; `X-CORS-Status`). Missing form fields give Werkzeug's HTML
400 and uncaught errors the app's HTML 500, as in Flask. Files are served as nginx did (ETag, ranges),
with CORS headers on 2xx/3xx. Faults (500s, drops, truncations, latency) are applied here, per request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

import anyio
import attrs

from _servekit._http import Receive, Scope, Send, lifespan

from . import _uploads
from ._http import (
    ClientGone,
    HTTPError,
    Request,
    Response,
    dumps,
    error_page_500,
    http_date,
    read_form,
    send_response,
    werkzeug_page,
)
from ._log import LogEntry, RequestLog
from ._service import ApiResult, Ctx, MediaCrushService

logger = logging.getLogger("mediacrush_async.testing")

#: `decorators.py: jsonp_notice`, in our words.
JSONP_NOTICE = (
    "// MediaCrush supports Cross Origin Resource Sharing requests.\n"
    "// There is no reason to use JSONP; please use CORS instead.\n"
    "// For more information, see https://mediacru.sh/docs/api"
)

#: nginx's CORS headers (`config/mediacrush-server.conf`), added to 2xx and 3xx replies only.
CORS_HEADERS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "HEAD, GET, OPTIONS, POST, PUT, DELETE"),
    ("Access-Control-Allow-Headers", "X-CORS-Status"),
]

Handler = Callable[[MediaCrushService, Request, Ctx, dict[str, str]], Awaitable[ApiResult]]


@attrs.frozen
class _Route:
    name: str
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    api: bool


def _r(methods: str, path: str, handler: Handler, *, api: bool = True) -> _Route:
    pattern = re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path.replace(".", r"\.")) + "$")
    return _Route(f"{methods} {path}", frozenset(methods.split(",")), pattern, handler, api)


S = MediaCrushService
ROUTES: tuple[_Route, ...] = (
    _r("POST", "/api/upload/file", _uploads.upload_file),
    _r("POST", "/api/upload/url", _uploads.upload_url),
    _r("POST", "/api/upload/noscript", _uploads.upload_noscript),
    _r("POST", "/api/album/create", S.album_create),
    _r("POST", "/api/album/zip", S.album_zip),
    _r("POST", "/api/url/info", S.url_info),
    _r("POST", "/api/feedback", S.feedback),
    _r("GET", "/api/info", S.info_list),
    _r("GET", "/api/status", S.status_list),
    _r("GET", "/api/<hash>/exists", S.exists),
    _r("GET", "/api/<hash>/status", S.status),
    _r("GET", "/api/<hash>/flags", S.get_flags),
    _r("POST", "/api/<hash>/flags", S.set_flags),
    _r("POST", "/api/<hash>/text", S.set_text),
    _r("GET", "/api/<hash>/delete", S.old_delete),
    _r("GET", "/api/<hash>", S.info),
    _r("DELETE", "/api/<hash>", S.delete),
    _r("GET", "/<hash>.json", S.info),
    _r("GET", "/<hash>/delete", S.delete_page, api=False),
    _r("GET", "/status/<hash>", S.status_page, api=False),
    _r("GET", "/<shard>/<file>", S.download_sharded, api=False),
    _r("GET", "/<file>", S.download, api=False),
)
del S


class App:
    """The emulated server's ASGI app over its `MediaCrushService`: routing, faults, the request log."""

    def __init__(self, service: MediaCrushService) -> None:
        self._service = service
        self.config = service.config
        self.log = RequestLog()
        self._origin_time = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.path.startswith("/_emulator/"):
            await send_response(
                send, await self._control(request), head_only=request.method == "HEAD"
            )
            return
        fault = self._service.faults.next()
        ctx = Ctx()
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

    async def _dispatch(self, request: Request, ctx: Ctx) -> Response:
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
        try:
            result = await route.handler(self._service, request, ctx, params)
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
            self._service.force_failure(h, status, count=int(count))
            return Response(200, [("Content-Type", "application/json")], b'{"status": "ok"}')
        return werkzeug_page(404)
