"""`DownloadOptions`: how `download_file` retries, reads, splits and syncs (validated on construction)."""

from __future__ import annotations

import math
from typing import Any, Final

import attrs

__all__ = ["DownloadOptions"]

_MIB: Final = 1024 * 1024


def _count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    _count(attribute.name, value, 0)


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    _count(attribute.name, value, 1)


def _seconds(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _timeout(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (
        isinstance(value, int | float) and math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{attribute.name} must be a number > 0 or None, got {value!r}")


@attrs.frozen
class DownloadOptions:
    """How `download_file` retries, reads, splits and syncs.

    Attributes:
        max_retries: consecutive failed attempts without progress before giving up (0: no retries).
            An attempt made progress only if it took the bytes on disk past the furthest point any
            earlier attempt reached: a server that ignores Range and cuts the body at the same byte
            every time runs the count out, however many bytes each attempt carries.
        backoff_base: the first full-jitter backoff ceiling in seconds; doubles per failure.
        backoff_cap: the largest backoff ceiling in seconds.
        max_retry_after: the longest server-requested wait (Retry-After) honoured, in seconds.
        chunk_size: bytes gathered before one write (and the largest direct read).
        segments: the most ranges fetched concurrently (1: one connection).
        min_segment_size: no segment is smaller; a file below twice this is never split.
        timeout: seconds for each network operation (connect, each read, pool wait); None: no limit.
        fsync: fsync the file (and its directory) before and after the rename.
        follow_redirects: follow 301/302/303/307/308 (httpx does, dropping Authorization across origins).
        max_redirects: the most redirect hops per request (httpx's client-wide limit still applies).
        direct_read: read HTTP/1.1 bodies straight from the connection (see `_clientkit._body`).
        deadline: seconds (wall clock) for the whole call, retries and backoff included; None: no limit.
            When it passes, `TransportFailure` is raised and the `.part` is kept for a resume.
        progress_interval: while bytes flow, the progress callback is called at least this often (in
            seconds of the download's clock), and on the first bytes; also after every write.
    """

    max_retries: int = attrs.field(default=5, validator=_non_negative)
    backoff_base: float = attrs.field(default=0.5, validator=_seconds)
    backoff_cap: float = attrs.field(default=30.0, validator=_seconds)
    max_retry_after: float = attrs.field(default=120.0, validator=_seconds)
    chunk_size: int = attrs.field(default=_MIB, validator=_positive)
    segments: int = attrs.field(default=1, validator=_positive)
    min_segment_size: int = attrs.field(default=8 * _MIB, validator=_positive)
    timeout: float | None = attrs.field(default=60.0, validator=_timeout)
    fsync: bool = True
    follow_redirects: bool = True
    max_redirects: int = attrs.field(default=10, validator=_non_negative)
    direct_read: bool = True
    deadline: float | None = attrs.field(default=None, validator=_timeout)
    progress_interval: float = attrs.field(default=1.0, validator=_seconds)
