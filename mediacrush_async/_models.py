"""Values the client returns and takes: `@attrs.frozen`, built from wire JSON by `_converter` only.

Field names follow the wire (MEDIACRUSH.md 6, the seed document's Appendix A). Optional keys may be
missing or null: `metadata` can be null, `blob_type` is null while pending, `compression` is the original's
size in bytes until processing ends, and album items may lack `hash` and `url`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from ._constants import ALBUM_TYPE, DEFAULT_BUDGET_BYTES, DEFAULT_BUDGET_PERIOD
from ._enums import ProcessingStatus
from ._errors import InvalidArgumentError

__all__ = [
    "Album",
    "ByteBudget",
    "Dimensions",
    "File",
    "FileEntry",
    "Metadata",
    "Status",
    "UploadResult",
]


@attrs.frozen
class Dimensions:
    """Width and height in pixels."""

    width: int
    height: int


@attrs.frozen
class FileEntry:
    """One stored file of a blob (an entry of `files` or `extras`).

    Attributes:
        file: the path on the server, e.g. "/CPvuR5lRhmS0.mp4".
        url: the CDN URL to prefer for downloads, or None (old replies and album items lack it).
        type: the mimetype, or None for an extension the server has no name for.
    """

    file: str
    url: str | None = None
    type: str | None = None


@attrs.frozen
class Metadata:
    """What processing found out about a blob; every field is optional (MEDIACRUSH.md 6).

    Attributes:
        dimensions: width and height (images, videos, audio cover art), or None.
        has_audio: whether an audio stream exists.
        has_video: whether a video stream exists (true for GIFs).
        has_subtitles: whether the video carries subtitles.
        duration: seconds (audio streams only), or None.
        has_zip: albums only: whether the zip of the album exists.
        extra: the whole metadata object as sent, including keys not named here (tags, subtitles).
    """

    dimensions: Dimensions | None = None
    has_audio: bool | None = None
    has_video: bool | None = None
    has_subtitles: bool | None = None
    duration: float | None = None
    has_zip: bool | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)


@attrs.frozen
class File:
    """A file blob (`GET /api/<hash>` when `type` is not `application/album`).

    Attributes:
        hash: the 12-character content id.
        type: the mimetype the uploader sent (the document says not to trust it), or None.
        blob_type: "video", "audio" or "image" once detected; None while pending.
        original: the path of the original, e.g. "/<hash>.gif".
        files: the original first, then the outputs of its processor (listed before they exist).
        extras: extra outputs, e.g. a video's `.jpg` thumbnail.
        flags: display flags (autoplay, loop, mute, nsfw) by name; empty while pending.
        metadata: what processing found, or None (the server sends null for some JPEGs).
        title: the title, or None.
        description: the description, or None.
        compression: original size / smallest output once processed; the original's size in bytes before.
    """

    hash: str
    type: str | None = None
    blob_type: str | None = None
    original: str | None = None
    files: tuple[FileEntry, ...] = ()
    extras: tuple[FileEntry, ...] = ()
    flags: Mapping[str, bool] = attrs.field(factory=dict, hash=False)
    metadata: Metadata | None = None
    title: str | None = None
    description: str | None = None
    compression: float | None = None


@attrs.frozen
class Album:
    """An album (`GET /api/<hash>` when `type` is `application/album`).

    Attributes:
        hash: 12 random lowercase hex characters.
        files: the full file objects, in album order (deleted files are dropped by the server).
        type: always "application/album".
        blob_type: "album".
        metadata: `{"has_zip": ...}` as Metadata, or None.
        title: the title, or None.
        description: the description, or None.
    """

    hash: str
    files: tuple[File, ...] = ()
    type: str = ALBUM_TYPE
    blob_type: str | None = "album"
    metadata: Metadata | None = None
    title: str | None = None
    description: str | None = None


@attrs.frozen
class Status:
    """The processing status of a file (`GET /api/<hash>/status`).

    Attributes:
        status: the parsed status; UNKNOWN for a value this client does not know.
        hash: the hash asked about.
        file: the file object once the server knows its type, or None (failed files have none).
        raw_status: the status string exactly as sent.
    """

    status: ProcessingStatus
    hash: str
    file: File | None = None
    raw_status: str = ""


@attrs.frozen
class UploadResult:
    """The outcome of an upload; a duplicate (409, or found by the pre-check) is a success too.

    Attributes:
        hash: the hash the server gave (for a file upload, equal to `content_hash(file)`).
        already_uploaded: True when the server already held these bytes.
        file: the object the server sent with a 409 when it is a real file object, else None.
    """

    hash: str
    already_uploaded: bool
    file: File | None = None


def _budget_bytes(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidArgumentError(
            attribute.name, f"must be a positive integer number of bytes or None, got {value!r}"
        )


def _budget_period(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidArgumentError(
            attribute.name, f"must be a positive number of seconds, got {value!r}"
        )


@attrs.frozen
class ByteBudget:
    """The upload byte budget the client keeps so that it does not meet the server's 420 by itself.

    The server counts every uploaded byte per client address in a fixed window that starts with the first
    upload (duplicates and refused uploads count too) and refuses with 420 once the total reaches the
    limit (MEDIACRUSH.md 5).

    Attributes:
        max_bytes: bytes per window; None disables pacing (a 420 still pauses uploads for `period`).
        period: the window length in seconds, and the pause after a 420 the client cannot place.
    """

    max_bytes: int | None = attrs.field(default=DEFAULT_BUDGET_BYTES, validator=_budget_bytes)
    period: float = attrs.field(default=DEFAULT_BUDGET_PERIOD, validator=_budget_period)
