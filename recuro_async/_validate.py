"""Checks of user input, made before any request; each error names the field and the allowed values."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import urlsplit

from ._constants import API_KEY_ENV, API_SECRET_ENV
from ._enums import Filter, OutputFormat
from ._errors import ConfigurationError, InvalidArgumentError

__all__ = [
    "SCALINGS",
    "base_url",
    "credentials",
    "file_id",
    "filters",
    "is_loopback_host",
    "optional_text",
    "optional_url",
    "output_format",
    "output_scaling",
    "positive_seconds",
    "url",
]

SCALINGS: Final = ("1080", "2160")  # StartJob: '1080' (for HD) and '2160' (for 4K)
_FORBIDDEN_HEADER_CHARS: Final = frozenset("\r\n\x00")


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url(value: object, field: str) -> str:
    """An absolute http(s) URL with a host."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(
            field, f"must be an absolute http:// or https:// URL, got {value!r}"
        )
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            field, f"must be an absolute http:// or https:// URL, got {value!r}"
        )
    if any(c in _FORBIDDEN_HEADER_CHARS or c.isspace() for c in value.strip()):
        raise InvalidArgumentError(field, "must not contain whitespace or control characters")
    return value.strip()


def optional_text(value: object, field: str) -> str | None:
    """None, or a string without line breaks or NUL (sent as is in a JSON property)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(field, f"must be a string or None, got {type(value).__name__}")
    if any(c in _FORBIDDEN_HEADER_CHARS for c in value):
        raise InvalidArgumentError(field, "must not contain line breaks or NUL")
    return value


def positive_seconds(value: object, field: str) -> float:
    """A finite number of seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise InvalidArgumentError(field, f"must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def optional_url(value: object, field: str) -> str | None:
    """None, or a URL as `url` checks it."""
    return None if value is None else url(value, field)


def base_url(value: object) -> str:
    """The API base URL: https, or http only to a loopback host; normalised to end with '/'."""
    if not isinstance(value, str):
        raise ConfigurationError(f"base_url must be a URL string, got {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an https:// URL, got {value!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            "base_url must use https:// (the service does not support unencrypted HTTP); "
            "http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost), "
            f"got host {parts.hostname!r}"
        )
    return value if value.endswith("/") else value + "/"


def credentials(
    api_key: str | None, api_secret: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The key and secret from the arguments, else from RECURO_API_KEY / RECURO_API_SECRET."""
    env = os.environ if environ is None else environ
    key = api_key if api_key is not None else env.get(API_KEY_ENV)
    secret = api_secret if api_secret is not None else env.get(API_SECRET_ENV)
    missing = [name for name, v in ((API_KEY_ENV, key), (API_SECRET_ENV, secret)) if not v]
    if missing:
        raise ConfigurationError(
            "missing Recuro credentials: pass api_key and api_secret, or set "
            + " and ".join(missing)
        )
    assert key is not None  # noqa: S101 - narrowed by the check above
    assert secret is not None  # noqa: S101
    if ":" in key:
        raise ConfigurationError("api_key must not contain ':' (the header is 'KEY:SECRET')")
    if any(c in _FORBIDDEN_HEADER_CHARS for c in key + secret):
        raise ConfigurationError("api_key and api_secret must not contain line breaks or NUL")
    return key, secret


def file_id(value: object) -> str:
    """A non-empty file_id string as UploadMedia returned it."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError("file_id", f"must be a non-empty string, got {value!r}")
    return value


def _allowed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names, key=str.lower))


def output_format(value: object, known: Iterable[str] | None = None) -> str:
    """A format the service offers: its own list once fetched, else the document's six."""
    names = list(known) if known is not None else [f.value for f in OutputFormat]
    if isinstance(value, str):
        for name in names:
            if name.casefold() == value.strip().casefold():
                return name
    raise InvalidArgumentError(
        "output_format", f"unknown format {value!r}; allowed: {_allowed(names)}"
    )


def filters(values: object, known: Iterable[str] | None = None) -> list[str]:
    """A list of filter names the service offers (its own list once fetched, else the document's 22)."""
    names = list(known) if known is not None else [f.value for f in Filter]
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidArgumentError(
            "filters", f"must be a list of filter names, got {type(values).__name__}"
        )
    by_fold = {name.casefold(): name for name in names}
    chosen: list[str] = []
    for value in values:
        name = by_fold.get(value.strip().casefold()) if isinstance(value, str) else None
        if name is None:
            raise InvalidArgumentError(
                "filters", f"unknown filter {value!r}; allowed: {_allowed(names)}"
            )
        if name not in chosen:
            chosen.append(name)
    return chosen


def output_scaling(value: object) -> str | None:
    """None, "1080" or "2160" (the ints 1080 and 2160 are accepted and sent as strings)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.strip() in SCALINGS:
        return value.strip()
    raise InvalidArgumentError(
        "output_scaling", f"unsupported scaling {value!r}; allowed: None, {', '.join(SCALINGS)}"
    )
