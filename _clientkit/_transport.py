"""Send one API call: limiter slot, retries by call class, and httpx errors mapped at one boundary.

Both clients call `send()`; their sans-I/O protocol modules build the request and classify the response,
so this module knows HTTP and timing but nothing about either API's wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import anyio
import attrs
import httpx

from ._clock import Clock, SystemClock
from ._errormap import most_specific
from ._failures import ResponseTooLargeFailure, TransportFailure
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from ._limiter import Limiter

__all__ = ["NEVER_SENT", "ResponseParts", "Retry", "map_httpx_errors", "send"]

DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024

# Failures raised before a single byte of the request could reach the server.
NEVER_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


@attrs.frozen
class ResponseParts:
    """The three parts of a response that a sans-I/O parser needs."""

    status_code: int
    headers: httpx.Headers = attrs.field(repr=False)
    content: bytes = attrs.field(repr=False)


@attrs.frozen
class Retry:
    """A classifier's verdict that a response may be retried.

    Attributes:
        after: the server's requested wait in seconds, if it gave one.
        refusal: the server refused the call for rate (it did no work): pause the shared limiter.
    """

    after: float | None = None
    refusal: bool = False


@contextmanager
def map_httpx_errors(deadline: float | None = None) -> Iterator[None]:
    """Translate httpx transport errors into `TransportFailure`, telling whether the request may have been sent.

    `deadline` bounds the whole block in seconds (connect, send and the whole response body): httpx's
    timeouts bound each read, so a body trickling one byte per second never trips them. A deadline hit
    is a `TransportFailure` with `request_sent=True` (the request may have reached the server).
    """
    if deadline is None:
        with _mapped():
            yield
        return
    with anyio.move_on_after(deadline) as scope, _mapped():
        yield
    if scope.cancelled_caught:
        raise TransportFailure(
            f"no complete response within the call deadline of {deadline:g} s", request_sent=True
        )


# What an httpx exception means: (could the server have the request?, the reason), by class; the most
# specific class of the exception wins (`most_specific`), as in httpx's own map of httpcore's errors.
_HTTPX_FAILURES: Final[Mapping[type[BaseException], tuple[bool, str]]] = {
    **dict.fromkeys(NEVER_SENT, (False, "could not send the request")),
    # write/read errors, read timeouts, RemoteProtocolError: a half-sent POST counts as sent
    httpx.TransportError: (True, "the connection failed"),
    # DecodingError and the like: a response arrived (so the request did) but could not be read
    httpx.RequestError: (True, "the response could not be read"),
}


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except httpx.RequestError as exc:
        sent, reason = most_specific(_HTTPX_FAILURES, exc) or _HTTPX_FAILURES[httpx.RequestError]
        raise TransportFailure(f"{type(exc).__name__}: {reason}", request_sent=sent) from exc


async def _one_attempt(
    client: httpx.AsyncClient,
    request: httpx.Request,
    max_response_bytes: int,
    deadline: float | None,
) -> ResponseParts:
    with map_httpx_errors(deadline):
        response = await client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_response_bytes:
                raise ResponseTooLargeFailure(max_response_bytes)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_response_bytes:
                    raise ResponseTooLargeFailure(max_response_bytes)
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
        return ResponseParts(response.status_code, response.headers, bytes(body))
    raise AssertionError("unreachable: map_httpx_errors raises when the deadline cancels the block")


async def send(
    client: httpx.AsyncClient,
    build: Callable[[], httpx.Request],
    *,
    safe: bool,
    policy: RetryPolicy,
    classify: Callable[[ResponseParts], Retry | None],
    limiter: Limiter | None = None,
    refusal_pause: float = 60.0,
    clock: Clock | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    deadline: float | None = None,
    log: logging.Logger,
    action: str,
) -> ResponseParts:
    """Send the request `build()` makes, retrying as `policy` and `safe` allow; return the final response.

    `safe=False` (a non-idempotent call) is retried only when the request never reached the server: a
    transport failure with `request_sent=False`, or a rate-limit refusal (the server did no work). Every
    attempt holds a limiter slot while in flight; a refusal pauses the whole limiter for the server's
    Retry-After or `refusal_pause`. After the last attempt the final response is returned, so the caller's
    parser raises the matching error. `action` names the call in log records (never its arguments).
    `deadline` bounds each attempt as a whole (connect, send, the whole body); see `map_httpx_errors`.
    """
    clock = clock or SystemClock()
    attempt = 0
    while True:
        request = build()
        ticket = await limiter.acquire() if limiter is not None else None
        abandoned = True
        try:
            parts = await _one_attempt(client, request, max_response_bytes, deadline)
            abandoned = False
        except TransportFailure as failure:
            if not (safe or not failure.request_sent) or attempt >= policy.max_retries:
                log.debug(
                    "request failed, not retried",
                    extra={
                        "action": action,
                        "attempt": attempt,
                        "request_sent": failure.request_sent,
                    },
                )
                raise
            abandoned = failure.request_sent
            wait = policy.delay(attempt)
            log.debug(
                "retry scheduled after a transport failure",
                extra={
                    "action": action,
                    "attempt": attempt,
                    "delay": wait,
                    "request_sent": failure.request_sent,
                },
            )
        else:
            decision = classify(parts)
            if decision is None:
                return parts
            if (not safe and not decision.refusal) or attempt >= policy.max_retries:
                log.debug(
                    "retryable response, not retried",
                    extra={"action": action, "attempt": attempt, "status": parts.status_code},
                )
                return parts
            server_wait = policy.honour(decision.after)
            if decision.refusal:
                pause = server_wait if server_wait is not None else refusal_pause
                if limiter is not None:
                    await limiter.pause(pause)
                    wait = 0.0  # the limiter's pause is the wait
                else:
                    wait = pause
            else:
                wait = max(policy.delay(attempt), server_wait or 0.0)
            log.debug(
                "retry scheduled after a retryable response",
                extra={
                    "action": action,
                    "attempt": attempt,
                    "status": parts.status_code,
                    "delay": wait,
                },
            )
        finally:
            if limiter is not None and ticket is not None:
                with anyio.CancelScope(shield=True):
                    await limiter.release(ticket, abandoned=abandoned)
        attempt += 1
        if wait > 0:
            await clock.sleep(wait)
