"""notify_url callbacks: the document's bodies POSTed, retried while the receiver is down or busy."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import anyio
import attrs
import httpx

from recuro_async.testing._config import EmulatorConfig

logger = logging.getLogger("recuro_async.testing")

_RETRYABLE_CALLBACK_STATUS = frozenset({408, 425, 429})


@attrs.frozen
class CallbackAttempt:
    """One POST of a notify_url callback.

    Attributes:
        time: when it was sent (monotonic seconds).
        file_id: the media it concerns.
        error_code: the body's error_code (MediaCompleted, JobCompleted or a failure code).
        attempt: 1 for the first try.
        outcome: the receiver's status code as a string, or the transport error's class name.
        delivered: whether the receiver answered 2xx.
        body: the JSON body sent.
    """

    time: float
    file_id: str
    error_code: str
    attempt: int
    outcome: str
    delivered: bool
    body: bytes = attrs.field(repr=False)


async def deliver(
    http: httpx.AsyncClient,
    config: EmulatorConfig,
    url: str,
    body: dict[str, str],
    file_id: str,
    *,
    record: Callable[[CallbackAttempt], object],
) -> None:
    """POST a callback, retrying (doubling pauses) while the receiver is down or answers 5xx/429.

    Each attempt is passed to `record`.
    """
    cfg = config
    payload = json.dumps(body).encode()
    for attempt in range(1, cfg.callback_attempts + 1):
        retry = True
        try:
            response = await http.post(
                url,
                content=payload,
                headers={"content-type": "application/json"},
                timeout=cfg.callback_timeout,
                follow_redirects=False,
            )
        except Exception as exc:
            outcome, delivered = type(exc).__name__, False
        else:
            status = response.status_code
            outcome, delivered = str(status), 200 <= status < 300
            retry = status >= 500 or status in _RETRYABLE_CALLBACK_STATUS
        record(
            CallbackAttempt(
                anyio.current_time(),
                file_id,
                body["error_code"],
                attempt,
                outcome,
                delivered,
                payload,
            )
        )
        logger.debug(
            "callback attempt",
            extra={"file_id": file_id, "attempt": attempt, "outcome": outcome},
        )
        if delivered or not retry:
            return
        if attempt < cfg.callback_attempts:
            await anyio.sleep(cfg.scaled(cfg.callback_retry_delay) * 2 ** (attempt - 1))
