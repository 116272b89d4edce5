"""Callbacks from the service (`notify_url`): a pure parser and an ASGI receiver.

The service POSTs `{"file_id", "error_code", "error_message"}` (plus `restored_file_url` for a finished
job) when media analysis or a job ends; `MediaCompleted` and `JobCompleted` are the success codes (seed:
UploadMedia and StartJob, -notify_url). Recuro does not sign callbacks, so `WebhookReceiver` accepts them
only under an unguessable path token: the token is the authentication.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Container
from typing import Any, Final

import anyio
import attrs
from anyio.abc import ObjectSendStream

from ._converter import normalise_keys
from ._errors import ResponseFormatError

__all__ = ["SUCCESS_CODES", "Notification", "WebhookReceiver", "parse_notification"]

log = logging.getLogger("recuro_async.webhooks")

SUCCESS_CODES: Final = frozenset({"mediacompleted", "jobcompleted"})
MAX_BODY_BYTES: Final = 64 * 1024
BODY_TIMEOUT: Final = 10.0
"""Seconds a sender has to deliver the whole body once the app is called; slower senders get 408."""

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@attrs.frozen
class Notification:
    """One callback from the service.

    Attributes:
        file_id: the media the callback is about.
        error_code: `MediaCompleted` / `JobCompleted` on success, else the failure's code.
        error_message: the service's text.
        restored_file_url: the download URL, for a finished job.
        succeeded: True for the success codes.
    """

    file_id: str
    error_code: str
    error_message: str = ""
    restored_file_url: str | None = None
    succeeded: bool = False

    @property
    def is_job(self) -> bool:
        """True when the callback ends a job (StartJob's notify_url), False for media analysis."""
        return self.error_code.lower() == "jobcompleted" or self.restored_file_url is not None


def parse_notification(body: bytes) -> Notification:
    """Parse a callback body; raises `ResponseFormatError` naming what is wrong."""
    try:
        data = normalise_keys(json.loads(body.decode("utf-8-sig")))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ResponseFormatError("the notification is not JSON") from exc
    if not isinstance(data, dict):
        raise ResponseFormatError("the notification is not a JSON object")
    file_id, code, message, url = (
        data.get(k) for k in ("file_id", "error_code", "error_message", "restored_file_url")
    )
    problems = [
        f"$.{name}: expected a non-empty string"
        for name, value in (("file_id", file_id), ("error_code", code))
        if not isinstance(value, str) or not value
    ]
    problems += [
        f"$.{name}: expected a string"
        for name, value in (("error_message", message), ("restored_file_url", url))
        if value is not None and not isinstance(value, str)
    ]
    if problems:
        raise ResponseFormatError(
            "the notification does not match the document", path_errors=problems
        )
    assert isinstance(file_id, str)  # noqa: S101 - narrowed by the checks above
    assert isinstance(code, str)  # noqa: S101
    return Notification(
        file_id=file_id,
        error_code=code,
        error_message=message if isinstance(message, str) else "",
        restored_file_url=url or None,
        succeeded=code.lower() in SUCCESS_CODES,
    )


Consumer = Callable[[Notification], Awaitable[object]]


class WebhookReceiver:
    """An ASGI app that receives callbacks under `/<token>/...` and hands each to a consumer.

    Any other path answers 404, a malformed body 400, a body over `max_body` bytes 413, a body not
    received within `body_timeout` seconds 408 (a trickling sender cannot hold the app); a file_id not
    in `known_file_ids` (when given) is acknowledged and ignored. The consumer is an async callback or
    the send end of a memory object stream. Serve it under a server that also bounds header reads and
    idle connections (`orchestrator`'s staging server does).
    """

    def __init__(
        self,
        consumer: Consumer | ObjectSendStream[Notification],
        *,
        token: str | None = None,
        known_file_ids: Container[str] | None = None,
        max_body: int = MAX_BODY_BYTES,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        if not (isinstance(body_timeout, int | float) and 0 < body_timeout < float("inf")):
            raise ValueError(
                f"body_timeout must be a finite number of seconds > 0, got {body_timeout!r}"
            )
        self._body_timeout = float(body_timeout)
        self.token = token or secrets.token_urlsafe(24)
        self._consumer = consumer
        self._known = known_file_ids
        self._max_body = max_body

    def __repr__(self) -> str:
        return "<WebhookReceiver token=***>"

    @property
    def path(self) -> str:
        """The path (with its token) to append to the public base URL given as `notify_url`."""
        return f"/{self.token}/"

    def notify_url(self, public_base_url: str) -> str:
        """The full `notify_url` for a public base URL where this app is reachable."""
        return public_base_url.rstrip("/") + self.path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope.get("path", "")
        first = path.strip("/").split("/")[0]
        if not secrets.compare_digest(first.encode(), self.token.encode()):
            await _respond(send, 404, b"not found")
            return
        if scope.get("method") != "POST":
            await _respond(send, 405, b"method not allowed")
            return
        body: bytes | None = b""
        with anyio.move_on_after(self._body_timeout) as deadline:
            body = await _read_body(receive, self._max_body)
        if deadline.cancelled_caught:
            log.info("notification body not received in time; refused")
            await _respond(send, 408, b"request body timeout")
            return
        if body is None:
            await _respond(send, 413, b"body too large")
            return
        try:
            notification = parse_notification(body)
        except ResponseFormatError as exc:
            log.info("malformed notification refused", extra={"reason": str(exc)[:200]})
            await _respond(send, 400, b"malformed notification")
            return
        if self._known is not None and notification.file_id not in self._known:
            log.info("notification for an unknown file_id ignored")
            await _respond(send, 200, b"ignored")
            return
        if isinstance(self._consumer, ObjectSendStream):
            await self._consumer.send(notification)
        else:
            await self._consumer(notification)
        await _respond(send, 200, b"ok")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
        else:  # pragma: no cover - unknown lifespan message
            await anyio.lowlevel.checkpoint()
