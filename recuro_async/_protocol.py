"""The Recuro wire protocol, sans I/O: build a request, classify and parse a response.

Every call is `POST base_url` with a JSON body naming the `action`, and the headers
`Authorization: KEY:SECRET` and `Content-Type: application/json` (seed: Overview, Authentication).
A 200 carries JSON or an empty body (StartJob, DeleteMedia). Any other status with a JSON
`{error_code, error_message}` body is an API error; without one it came from a web server or proxy
(seed: HTTP Status Codes, Error Responses). No I/O here: only bytes, headers and package errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final, TypeVar

import cattrs
import httpx

from _clientkit._redact import Secret, contains_secret, redact_excerpt, redact_text
from _clientkit._retry import parse_retry_after
from _clientkit._transport import ResponseParts, Retry

from ._constants import BODY_EXCERPT_CHARS, USER_AGENT
from ._converter import normalise_keys, structure
from ._errormap import status_error_class
from ._errors import RateLimitedError, RecuroAPIError, ResponseFormatError

__all__ = [
    "Action",
    "Credentials",
    "build_request",
    "classify",
    "decode",
    "is_rate_limit_refusal",
    "parse_response",
    "structure_as",
]


_T = TypeVar("_T")


class Action(StrEnum):
    """The document's request names ("Request Listing")."""

    LIST_MEDIA = "ListMedia"
    LIST_FILTERS = "ListFilters"
    LIST_OUTPUT_FORMATS = "ListOutputFormats"
    UPLOAD_MEDIA = "UploadMedia"
    START_JOB = "StartJob"
    GET_PROGRESS = "GetProgress"
    DELETE_MEDIA = "DeleteMedia"


# Calls whose 200 has an empty body ("HTTP status code 200 is returned if successful, body is empty").
EMPTY_BODY_ACTIONS: Final = frozenset({Action.START_JOB, Action.DELETE_MEDIA})


class Credentials:
    """An API key and its secret; the secret never shows in a repr."""

    __slots__ = ("key", "secret")

    def __init__(self, key: str, secret: Secret) -> None:
        self.key = key
        self.secret = secret

    def header_value(self) -> str:
        """The `Authorization` header value, `KEY:SECRET` (seed: Authentication)."""
        return f"{self.key}:{self.secret.reveal()}"

    def __repr__(self) -> str:
        return f"Credentials(key={self.key!r}, secret=***)"


def build_request(
    base_url: str, credentials: Credentials, action: Action, params: Mapping[str, Any] | None = None
) -> httpx.Request:
    """The POST for `action`; `params` with a None value are left out (optional properties)."""
    body: dict[str, Any] = {"action": action.value}
    body.update({k: v for k, v in (params or {}).items() if v is not None})
    return httpx.Request(
        "POST",
        base_url,
        content=json.dumps(body, separators=(",", ":")).encode(),
        headers={
            "Authorization": credentials.header_value(),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        },
    )


def decode(content: bytes) -> Any:
    """JSON from a body, keys lower-cased; raises ValueError for non-JSON (RecursionError if absurdly deep)."""
    text = content.decode("utf-8-sig")  # a BOM is tolerated: PHP services are known to send one
    return normalise_keys(json.loads(text))


def _api_error_body(content: bytes) -> tuple[str, str] | None:
    """`(error_code, error_message)` if the body is the API's error object, else None."""
    try:
        data = decode(content)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    code = data.get("error_code")
    if not isinstance(code, str) or not code:
        return None
    message = data.get("error_message")
    return code, message if isinstance(message, str) else ""


def is_rate_limit_refusal(status_code: int, error_code: str | None) -> bool:
    """HTTP 429, or a 400 whose error_code contains "RateLimit" (any case) [SPEC 2.2 assumption]."""
    return status_error_class(status_code, error_code) is RateLimitedError


def classify(parts: ResponseParts) -> Retry | None:
    """Whether a response may be retried: rate-limit refusals (pausing the limiter) and 5xx."""
    if parts.status_code == 200:
        return None
    body = _api_error_body(parts.content)
    after = parse_retry_after(parts.headers)
    if is_rate_limit_refusal(parts.status_code, body[0] if body else None):
        return Retry(after=after, refusal=True)
    if parts.status_code >= 500:
        return Retry(after=after)
    return None


# how much of a body is read to make an excerpt: secrets are masked in all of it before the cut
_EXCERPT_SOURCE_BYTES: Final = 64 * 1024


def _excerpt(content: bytes, secrets: Iterable[str]) -> str:
    return redact_excerpt(
        content[:_EXCERPT_SOURCE_BYTES],
        secrets,
        limit=BODY_EXCERPT_CHARS,
        cut=len(content) > _EXCERPT_SOURCE_BYTES,
    )


def parse_response(action: Action, parts: ResponseParts, *, secrets: Iterable[str] = ()) -> Any:
    """The decoded JSON of a 200 (None for an empty body where allowed), or the matching error."""
    secrets = tuple(secrets)
    if parts.status_code != 200:
        raise _error_for(action, parts, secrets)
    if not parts.content.strip():
        if action in EMPTY_BODY_ACTIONS:
            return None
        raise ResponseFormatError("the response body is empty", action=action.value)
    try:
        data = decode(parts.content)
    except (ValueError, RecursionError):
        data = _NOT_JSON
    if data is _NOT_JSON:  # raised here, without the decoder's error: it holds the whole body
        raise ResponseFormatError(
            f"the response is not JSON: {_excerpt(parts.content, secrets)!r}", action=action.value
        )
    if secrets and contains_secret(parts.content.decode("utf-8", "replace"), secrets):
        # a hostile answer quoting the credential (in a state, a URL, a key): masked before any value
        # of it can be stored, shown or raised
        data = _masked(data, secrets)
    return data


_NOT_JSON: Final = object()


def _masked(data: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(data, str):
        return redact_text(data, secrets)
    if isinstance(data, list):
        return [_masked(value, secrets) for value in data]
    if isinstance(data, dict):
        return {_masked(k, secrets): _masked(v, secrets) for k, v in data.items()}
    return data


def _error_for(action: Action, parts: ResponseParts, secrets: tuple[str, ...]) -> Exception:
    """The exception of a non-200 response: its class from the error table, its text masked."""
    body = _api_error_body(parts.content)
    raw_code = body[0] if body else None
    cls = status_error_class(parts.status_code, raw_code)  # classified on the raw code
    if not issubclass(cls, RecuroAPIError):
        excerpt = _excerpt(parts.content, secrets)
        return cls(status_code=parts.status_code, body_excerpt=excerpt, action=action.value)
    if body is None:
        # a refusal without an API body (a bare 429): its page stands in for the message
        code, message = _BARE_REFUSAL_CODE, _excerpt(parts.content, secrets)
    else:
        # both strings came from the server and may echo the Authorization header: masked before they
        # reach an exception (and from there a log, the journal or a report)
        code, message = redact_text(body[0], secrets), redact_text(body[1], secrets)
    if issubclass(cls, RateLimitedError):
        return cls(
            status_code=parts.status_code,
            error_code=code,
            error_message=message,
            action=action.value,
            retry_after=parse_retry_after(parts.headers),
        )
    return cls(
        status_code=parts.status_code, error_code=code, error_message=message, action=action.value
    )


# the error_code given to a 429 that has no API error body
_BARE_REFUSAL_CODE: Final = "RateLimitExceeded"


def structure_as(data: Any, cls: type[_T], action: Action, *, secrets: Iterable[str] = ()) -> _T:
    """Structure decoded JSON into `cls`; a mismatch is a ResponseFormatError naming the JSON paths."""
    # The error names JSON paths and expected types, never the server's values, and is raised outside
    # the `except` with no cause: cattrs' exceptions quote the values (a hostile server may put the
    # Authorization header in one), and a cause or context would carry them into tracebacks and logs.
    try:
        return structure(data, cls)
    except cattrs.BaseValidationError as exc:
        # the paths hold the server's keys, and some messages its extra keys: masked like any echo
        paths = [redact_text(path, secrets) for path in cattrs.transform_error(exc)]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        paths = [f"{type(exc).__name__} while structuring the response @ $"]
    raise ResponseFormatError(
        "the response does not match the document", path_errors=paths, action=action.value
    )
