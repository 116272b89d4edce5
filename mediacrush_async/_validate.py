"""Pure checks of user input: each returns the clean value or raises before any request is sent.

Errors name the argument and the allowed values (`InvalidArgumentError`, also a `ValueError`), or
`ConfigurationError` for the client's own options.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import urlsplit

from ._constants import ALBUM_MAX_ITEMS, FLAG_NAMES, HASH_PATTERN
from ._errors import ConfigurationError, InvalidArgumentError

__all__ = [
    "album_hashes",
    "base_url",
    "file_hash",
    "filename",
    "flags",
    "hash_list",
    "is_loopback_host",
    "poll_interval",
    "timeout",
    "upload_url",
    "url_list",
]

_HASH_RULE: Final = "a 12-character MediaCrush hash of letters, digits, '-' and '_'"
_URL_RULE: Final = "an absolute http:// or https:// URL with a host"


def file_hash(value: object, field: str = "hash") -> str:
    """A file or album hash, safe to put in a URL path."""
    if not isinstance(value, str) or HASH_PATTERN.fullmatch(value) is None:
        raise InvalidArgumentError(field, f"must be {_HASH_RULE}, got {value!r}")
    return value


def _as_list(values: object, field: str, what: str) -> list[object]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidArgumentError(
            field, f"must be a list of {what} (not a single string), got {type(values).__name__}"
        )
    items = list(values)
    if not items:
        raise InvalidArgumentError(field, f"must hold at least one {what[:-1]}, got an empty list")
    return items


def hash_list(values: object, field: str = "hashes") -> list[str]:
    """A non-empty list of hashes, deduplicated in order (the server collapses repeats)."""
    items = _as_list(values, field, "hashes")
    checked = [file_hash(item, f"{field}[{index}]") for index, item in enumerate(items)]
    return list(dict.fromkeys(checked))


def album_hashes(values: object, field: str = "hashes") -> list[str]:
    """1 to 1024 file hashes, in album order; repeats are kept (the server allows them)."""
    items = _as_list(values, field, "hashes")
    if len(items) > ALBUM_MAX_ITEMS:
        raise InvalidArgumentError(
            field, f"an album holds 1 to {ALBUM_MAX_ITEMS} items, got {len(items)}"
        )
    return [file_hash(item, f"{field}[{index}]") for index, item in enumerate(items)]


def upload_url(value: object, field: str = "url") -> str:
    """An absolute http(s) URL for the server to fetch."""
    if not isinstance(value, str):
        raise InvalidArgumentError(field, f"must be {_URL_RULE}, got {type(value).__name__}")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidArgumentError(field, f"must be {_URL_RULE} without spaces, got {value!r}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:
        raise InvalidArgumentError(field, f"must be {_URL_RULE}, got {value!r}") from exc
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise InvalidArgumentError(field, f"must be {_URL_RULE}, got {value!r}")
    return value


def url_list(values: object, field: str = "urls") -> list[str]:
    """A non-empty list of URLs without commas (the server splits the list on `,`), deduplicated."""
    items = _as_list(values, field, "urls")
    checked: list[str] = []
    for index, item in enumerate(items):
        url = upload_url(item, f"{field}[{index}]")
        if "," in url:
            raise InvalidArgumentError(
                f"{field}[{index}]",
                f"must not contain ',' (the server splits the list on commas), got {url!r}",
            )
        checked.append(url)
    return list(dict.fromkeys(checked))


def flags(values: Mapping[str, object]) -> dict[str, bool]:
    """Flag names known to the server with bool values; at least one."""
    allowed = ", ".join(FLAG_NAMES)
    if not values:
        raise InvalidArgumentError("flags", f"give at least one flag: {allowed}")
    checked: dict[str, bool] = {}
    for name, value in values.items():
        if name not in FLAG_NAMES:
            raise InvalidArgumentError(name, f"is not a flag; allowed flags: {allowed}")
        if not isinstance(value, bool):
            raise InvalidArgumentError(name, f"must be True or False, got {value!r}")
        checked[name] = value
    return checked


def filename(value: object, field: str = "filename") -> str:
    """A file name for the multipart part: its base name, printable, not empty."""
    if not isinstance(value, str):
        raise InvalidArgumentError(field, f"must be a string, got {type(value).__name__}")
    base = value.replace("\\", "/").rsplit("/", 1)[-1]
    if not base or base in (".", "..") or any(ord(ch) < 32 or ord(ch) == 127 for ch in base):
        raise InvalidArgumentError(
            field, f"must be a non-empty file name without control characters, got {value!r}"
        )
    return base


def poll_interval(value: object, field: str = "poll_interval") -> float:
    """A positive, finite number of seconds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidArgumentError(field, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def timeout(value: object, field: str = "timeout") -> float | None:
    """None (wait for ever) or a finite number of seconds >= 0."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidArgumentError(
            field, f"must be None or a number of seconds >= 0, got {value!r}"
        )
    return float(value)


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(value: object) -> str:
    """The server's base URL without a trailing slash; https unless the host is loopback."""
    if not isinstance(value, str):
        raise ConfigurationError(f"base_url must be a string URL, got {type(value).__name__}")
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"base_url is not a valid URL: {value!r}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"base_url must be an absolute https:// URL (http:// only for loopback), got {value!r}"
        )
    if scheme == "http" and not is_loopback_host(host):
        raise ConfigurationError(
            f"base_url must use https:// unless its host is loopback "
            f"(localhost, 127.0.0.0/8, ::1), got {value!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"base_url must not carry credentials, a query or a fragment, got {value!r}"
        )
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
