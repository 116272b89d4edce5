"""The emulator's settings: one frozen, validated value (time scale, limits, faults, switches)."""

from __future__ import annotations

import math
from typing import Any

import attrs

#: Processing outcomes a file can end in besides `done` (MEDIACRUSH.md section 4).
FAILURE_STATUSES = ("error", "timeout", "unrecognised", "internal_error")

#: What the real server's rate limit allowed per IP and window (MEDIACRUSH.md section 5).
DEFAULT_BYTE_LIMIT = 250_000_000
DEFAULT_BYTE_WINDOW = 3600.0
#: `max_file_size = 50M` in the server's config: the URL-upload limit and the nginx body limit.
FIFTY_MB = 50 * 1024 * 1024


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _rate(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ValueError(f"{attribute.name} must be between 0.0 and 1.0, got {value!r}")


def _positive_int(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _optional_positive_int(_: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None:
        _positive_int(_, attribute, value)


def _non_negative_int(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an integer >= 0, got {value!r}")


def _bool(_: Any, attribute: attrs.Attribute[Any], value: bool) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be True or False, got {value!r}")


def _failure_status(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in FAILURE_STATUSES:
        raise ValueError(
            f"{attribute.name} must be one of {', '.join(FAILURE_STATUSES)}; got {value!r}"
        )


def _failure_statuses(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    allowed = ("error", "timeout", "internal_error")
    if not value or any(v not in allowed for v in value):
        raise ValueError(
            f"{attribute.name} must be a non-empty tuple drawn from {', '.join(allowed)}; got {value!r}"
        )


def _cdn_url(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"{attribute.name} must be an http(s) URL or None, got {value!r}")


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Settings of a `MediaCrushEmulator`; defaults reproduce the real server (MEDIACRUSH.md).

    Attributes:
        time_scale: Multiplies every processing duration and the 420 window (0.01 = 100 times faster).
        seed: Seeds fault decisions, processing failures and album ids, so runs are reproducible.
        byte_limit: Bytes one client address may upload per window before 420 (server: 250,000,000).
        byte_window: Length in seconds (before scaling) of the fixed 420 window (server: 3600).
        rate_limit_exempt: Addresses never rate-limited (the server's `whitelisted_ips`).
        max_url_size: Largest body `/api/upload/url` accepts before 413 (server: 50 MB).
        max_body_size: Largest request body the front server (nginx) lets through before its HTML 413;
            None disables the check (the Flask app itself had no limit on file uploads).
        max_album_items: Albums with more items get 413 (server: 1024).
        detect_seconds: Time a new upload stays `pending` before its type is known.
        queue_seconds: Time a detected file waits `pending` for a worker.
        processing_seconds: Length of the browser-ready ("sync") step for video; audio takes half and
            images a quarter; plus `seconds_per_mib` of the original.
        finishing_seconds: Length of the "async" step between `ready` and `done` (same factors).
        seconds_per_mib: Extra processing time per MiB of original.
        zip_seconds: Time an album zip takes after `/api/album/zip`.
        max_concurrent_processing: Files processed at once (0 = unlimited); others wait `pending`.
        memory_threshold: Uploads and derived files larger than this live in a temporary directory.
        url_fetch_timeout: Timeout for `/api/upload/url` downloads (the server had none); None = none.
        fault_rate: Share of requests answered with an HTML 500 before doing anything.
        drop_rate: Share of responses whose connection is dropped halfway through the body
            (after the request took effect).
        truncate_rate: Share of file downloads cut short at a random point.
        latency: Seconds added to every request.
        latency_jitter: Up to this many extra seconds, drawn from the seeded generator.
        bandwidth: Bytes per second each response body is paced to; None = unlimited.
        accept_ranges_on_206: Also name `Accept-Ranges: bytes` on 206 answers. Off by default, as
            nginx (which served the files) names it on 200s only: the 206 itself proves range support.
        failure_rate: Share of processings that fail (status drawn from `failure_statuses`).
        failure_statuses: Failure statuses the seeded processing failures choose from.
        non_media_status: How an upload that is not media ends: `unrecognised` (the documented
            meaning), `error` (the repo's own test: ImageMagick claims it, then `convert` fails) or
            `internal_error` (issue #569).
        cdn_url: Origin used in each file entry's `url`; None = the origin the request came in on
            (so downloads reach the emulator). The real server used `https://cdn.mediacru.sh`.
        sharding: Serve files at `/<first char>/<name>` and 301-redirect `/<name>` there (Dec 2014).
        read_only: Behave as after the shutdown (Jan 2015): uploads get 403, the rest is read-only.
        broken_409_object: Every 409 carries `[{"error": 404}, 404]` as its object (issue #356).
        failed_reupload_409: Re-uploading bytes whose processing failed gives 409 with that broken
            object instead of 200 (the Oct 2013 behaviour of issue #356).
        doc_mode_415: The document's 415 "file extension is not acceptable" on uploads of non-media
            (the server dropped this check in Dec 2013).
        doc_png_thumbnails: Video thumbnails are `.png` as the document says (server: `.jpg`).
        doc_status_result_only_when_done: `/api/<h>/status` adds the file object only when `done`,
            as the document's note says (server: as soon as the type is known).
        doc_exists_200: `/api/<h>/exists` answers a missing hash with 200 (server: 404).
        doc_flags_without_nsfw: Flags as in the document's Appendix B, without `nsfw` (images and
            audio then have `{}`).
        doc_status_list_without_file: `/api/status?list=` entries without `"file"`, as the
            document's example shows.
    """

    time_scale: float = attrs.field(default=1.0, validator=_positive)
    seed: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))

    byte_limit: int = attrs.field(default=DEFAULT_BYTE_LIMIT, validator=_positive_int)
    byte_window: float = attrs.field(default=DEFAULT_BYTE_WINDOW, validator=_positive)
    rate_limit_exempt: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    max_url_size: int = attrs.field(default=FIFTY_MB, validator=_positive_int)
    max_body_size: int | None = attrs.field(default=FIFTY_MB, validator=_optional_positive_int)
    max_album_items: int = attrs.field(default=1024, validator=_positive_int)

    detect_seconds: float = attrs.field(default=0.5, validator=_non_negative)
    queue_seconds: float = attrs.field(default=0.5, validator=_non_negative)
    processing_seconds: float = attrs.field(default=4.0, validator=_non_negative)
    finishing_seconds: float = attrs.field(default=4.0, validator=_non_negative)
    seconds_per_mib: float = attrs.field(default=0.25, validator=_non_negative)
    zip_seconds: float = attrs.field(default=2.0, validator=_non_negative)
    max_concurrent_processing: int = attrs.field(default=0, validator=_non_negative_int)
    memory_threshold: int = attrs.field(default=4 * 1024 * 1024, validator=_non_negative_int)
    url_fetch_timeout: float | None = attrs.field(default=60.0)

    fault_rate: float = attrs.field(default=0.0, validator=_rate)
    drop_rate: float = attrs.field(default=0.0, validator=_rate)
    truncate_rate: float = attrs.field(default=0.0, validator=_rate)
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    latency_jitter: float = attrs.field(default=0.0, validator=_non_negative)
    bandwidth: int | None = attrs.field(default=None, validator=_optional_positive_int)
    accept_ranges_on_206: bool = attrs.field(default=False, validator=_bool)
    failure_rate: float = attrs.field(default=0.0, validator=_rate)
    failure_statuses: tuple[str, ...] = attrs.field(
        default=("error", "timeout", "internal_error"), converter=tuple, validator=_failure_statuses
    )
    non_media_status: str = attrs.field(default="unrecognised", validator=_failure_status)

    cdn_url: str | None = attrs.field(default=None, validator=_cdn_url)
    sharding: bool = attrs.field(default=False, validator=_bool)
    read_only: bool = attrs.field(default=False, validator=_bool)
    broken_409_object: bool = attrs.field(default=False, validator=_bool)
    failed_reupload_409: bool = attrs.field(default=False, validator=_bool)

    doc_mode_415: bool = attrs.field(default=False, validator=_bool)
    doc_png_thumbnails: bool = attrs.field(default=False, validator=_bool)
    doc_status_result_only_when_done: bool = attrs.field(default=False, validator=_bool)
    doc_exists_200: bool = attrs.field(default=False, validator=_bool)
    doc_flags_without_nsfw: bool = attrs.field(default=False, validator=_bool)
    doc_status_list_without_file: bool = attrs.field(default=False, validator=_bool)

    @url_fetch_timeout.validator
    def _check_timeout(self, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None:
            _positive(self, attribute, value)

    @non_media_status.validator
    def _check_non_media(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value == "timeout":
            raise ValueError(f"{attribute.name} must be unrecognised, error or internal_error")

    def scaled(self, seconds: float) -> float:
        """Return `seconds` of emulated time in real seconds (times `time_scale`)."""
        return seconds * self.time_scale
