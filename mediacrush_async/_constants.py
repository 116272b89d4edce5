"""Named defaults and wire limits of the MediaCrush client (sources in MEDIACRUSH.md)."""

from __future__ import annotations

import re
from typing import Final

import httpx

__all__ = [
    "ALBUM_MAX_ITEMS",
    "ALBUM_TYPE",
    "BASE_URL_ENV",
    "CHUNK_SIZE",
    "CORS_HEADER",
    "DEFAULT_BASE_URL",
    "DEFAULT_BUDGET_BYTES",
    "DEFAULT_BUDGET_PERIOD",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "FLAG_NAMES",
    "HASH_PATTERN",
    "LOGGER_NAME",
    "MAX_LIST_CHARS",
    "MAX_URL_LENGTH",
    "SPOOL_MEMORY",
]

DEFAULT_BASE_URL: Final = "https://mediacru.sh"
BASE_URL_ENV: Final = "MEDIACRUSH_BASE_URL"  # read by the client and the `mediacrush` command alike
LOGGER_NAME: Final = "mediacrush_async"

# Connect quickly, but let a large multipart body take its time chunk by chunk.
DEFAULT_TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)

# The server's upload limit (MEDIACRUSH.md 5, `ratelimit.py`): bytes per address per fixed window.
DEFAULT_BUDGET_BYTES: Final = 250_000_000
DEFAULT_BUDGET_PERIOD: Final = 3600.0

# Official clients polled every 0.5-1 s (MEDIACRUSH.md 8).
DEFAULT_POLL_INTERVAL: Final = 1.0

# `POST /api/album/create` refuses more than 1024 items with 413 (MEDIACRUSH.md 3).
ALBUM_MAX_ITEMS: Final = 1024
ALBUM_TYPE: Final = "application/album"

# Every flag any processor has ever had (MEDIACRUSH.md 6: video autoplay/loop/mute/nsfw; others nsfw).
FLAG_NAMES: Final = ("autoplay", "loop", "mute", "nsfw")

# File hashes are 12 characters of URL-safe base64; album hashes 12 lowercase hex characters (MEDIACRUSH.md 1).
HASH_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{12}")

# `?list=a,b,...` goes in the URL: keep each request's list short enough for any proxy on the way.
MAX_LIST_CHARS: Final = 1500
MAX_URL_LENGTH: Final = 2000

CORS_HEADER: Final = "X-CORS-Status"

# Upload bodies are streamed in chunks of this size; a non-seekable source is spooled to disk past SPOOL_MEMORY.
CHUNK_SIZE: Final = 256 * 1024
SPOOL_MEMORY: Final = 1024 * 1024
