"""EmulatorConfig: every knob of the emulator, validated, frozen."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

# The document's own example header ("Authorization: K34Zz6AqrQPuhTBj:RkeD3wrU7vAMzX9JFghQZGaBYSfc2pbT"),
# so the document's curl line works against the emulator as written.
DEMO_API_KEY = "K34Zz6AqrQPuhTBj"
DEMO_API_SECRET = "RkeD3wrU7vAMzX9JFghQZGaBYSfc2pbT"  # noqa: S105 - a published demo pair

MIB = 1024 * 1024


def _credentials(value: Mapping[str, str]) -> dict[str, str]:
    creds = dict(value)
    for key, secret in creds.items():
        if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
            raise ValueError("credentials: keys and secrets must be non-empty strings")
        if ":" in key or key.strip() != key:
            raise ValueError("credentials: an API key may not contain ':' or surrounding spaces")
    if not creds:
        raise ValueError("credentials: at least one KEY: SECRET pair is required")
    return creds


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _probability(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _at_least_one(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _optional_positive(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be None or > 0, got {value!r}")


def _refusal(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("400", "429"):
        raise ValueError(f"{attribute.name} must be '400' or '429', got {value!r}")


def _jitter(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"{attribute.name} must be >= 0 and < 1 (the share by which each duration may vary), "
            f"got {value!r}"
        )


FETCH_TIMINGS: Final = ("after-answer", "before-answer")


def _fetch_timing(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in FETCH_TIMINGS:
        raise ValueError(
            f"{attribute.name} must be 'after-answer' or 'before-answer', got {value!r}"
        )


def _public_url(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{attribute.name} must be an http(s) origin, got {value!r}")


def _codes(value: Mapping[str, str]) -> dict[str, str]:
    return {str(old): str(new) for old, new in value.items()}


def _optional_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


# Other plausible answers where the API document is silent: every code this emulator sends that the
# document does not name, renamed (see `EmulatorConfig.error_codes`).
ALTERNATE_ERROR_CODES: Final = {
    "MediaNotReady": "MediaNotCompleted",
    "JobAlreadyStarted": "JobExists",
    "MediaNotFound": "FileIdUnknown",
    "MediaUploadFailed": "OriginalUnreachable",
    "MediaFormatUnsupported": "UnsupportedContainer",
    "JobFailed": "RestorationFailed",
}


@attrs.frozen(kw_only=True, repr=False)
class EmulatorConfig:
    """How the emulator behaves. Durations are in seconds at `time_scale` 1.0.

    Attributes:
        credentials: accepted `KEY: SECRET` pairs (default: the demo pair); each key has its own rate window
            and sees only its own media.
        time_scale: multiplies every processing duration, callback retry delay and the rate-limit window
            (0.01 runs 100 times faster). Fault latency, timeouts and bandwidth are real time.
        seed: seeds ids, guids and the fault plan.
        rate_limit, rate_period: at most `rate_limit` API requests per sliding `rate_period * time_scale`
            seconds per API key.
        refusal: "400" (HTTP 400, error_code RateLimitExceeded) or "429" (HTTP 429 with Retry-After).
        quirks: answer with odd key case ("File_ID", "STATE") and progress as a string ("42.5").
        max_concurrent_jobs: jobs running at once (service-wide); later ones wait in JobQueued.
        max_concurrent_fetches: originals fetched at once; later uploads stay in MediaUploading at 0.
        media_base_seconds, media_seconds_per_mib: analysis time after the fetch (MediaQueued..MediaAnalyze).
        job_base_seconds, job_seconds_per_mib: a job's running time (x1.5 with Colorize, x1.25 at 1080,
            x2 at 2160).
        jitter: 0 (default): durations are exactly as above. F in (0, 1): each media's analysis time and
            each job's running time is multiplied by its own factor drawn uniformly from [1-F, 1+F], seeded
            by `seed` and the file_id (and the job's number on that media), so a run is reproducible for a
            seed and request order and does not depend on task scheduling. The document names no times.
        fetch_timing: when UploadMedia fetches original_file_url; the document does not say.
            "after-answer" (default): it answers with the file_id at once and fetches in the background
            (MediaUploading shows the fetch). "before-answer": it fetches the whole original (the same
            fetch, limits and failures) before it answers, as a server that validates the link
            synchronously would; the answer is still the file_id, and a failed fetch still fails the
            media with MediaUploadFailed (GetProgress, callback), not the UploadMedia request.
        fault_rate: share of API requests answered 500 InternalError (before any effect).
        drop_rate: share of API responses cut off mid-body after the action took effect.
        truncate_rate: share of downloads cut off mid-body.
        job_failure_rate: share of jobs that fail (JobFailed on GetProgress and in the callback).
        latency: extra delay of each API response, uniform in [latency_min, latency] seconds (seeded
            by `seed`; real time, like bandwidth). 0 (default): no delay.
        latency_min: the smallest such delay (default 0): `latency_min=0.02, latency=0.4` draws each
            response's delay from 20-400 ms. At most `latency`.
        bandwidth: bytes per second per download response (per connection), or None for no cap.
        accept_ranges_on_206: also name `Accept-Ranges: bytes` on 206 answers of download.php. Off by
            default: like nginx and most servers, it is named on 200s only (the 206 itself proves
            range support), so clients are tested against what they meet.
        max_body_bytes: largest accepted request body; larger ones get RequestTooLarge.
        disk_threshold: media (originals and restored files) larger than this live in `media_dir`.
        max_media_bytes: largest original accepted (None: no limit).
        media_dir: where large media live (default: a temporary directory removed on exit).
        callback_attempts, callback_retry_delay: notify_url delivery tries, and the first pause (doubling).
        callback_timeout, fetch_timeout: real-time limits for a callback POST and an original's fetch.
        callback_loss: share of notify_url callbacks never sent (drawn per media and kind, seeded): a
            receiver that lost them, or a service that forgets. Default 0: every callback is sent.
        strict_delete: DeleteMedia of an unknown or deleted id answers MediaNotFound (else 200).
        public_url: origin used in restored_file_url (default: the origin the request was sent to).
        restored_url_ttl: None (default): restored-file URLs never expire. A duration: every
            restored_file_url handed out (GetProgress, ListMedia, the job callback) is signed
            (`&expires=...&sig=...`) and answers 403 `LinkExpired` once this long has passed since it
            was handed out (scaled by `time_scale`, like processing durations); each GetProgress or
            ListMedia hands out a fresh one. A download already streaming is not cut.
        error_codes: renames error codes on the wire (`{"MediaNotReady": "MediaNotCompleted"}`). The API
            document names almost none of the codes this emulator sends (premature or second StartJob,
            unknown file_id, failed media...); a real service may use others, so clients and the
            orchestrator are tested against more than one set. `ALTERNATE_ERROR_CODES` is one.
    """

    credentials: Mapping[str, str] = attrs.field(
        factory=lambda: {DEMO_API_KEY: DEMO_API_SECRET},
        converter=_credentials,
        repr=False,
        hash=False,
    )
    time_scale: float = attrs.field(default=1.0, converter=float, validator=_positive)
    seed: int = 0
    rate_limit: int = attrs.field(default=200, validator=_at_least_one)
    rate_period: float = attrs.field(default=60.0, converter=float, validator=_positive)
    refusal: Literal["400", "429"] = attrs.field(default="400", validator=_refusal)
    quirks: bool = False
    max_concurrent_jobs: int = attrs.field(default=8, validator=_at_least_one)
    max_concurrent_fetches: int = attrs.field(default=16, validator=_at_least_one)
    media_base_seconds: float = attrs.field(default=4.0, converter=float, validator=_non_negative)
    media_seconds_per_mib: float = attrs.field(
        default=0.5, converter=float, validator=_non_negative
    )
    job_base_seconds: float = attrs.field(default=10.0, converter=float, validator=_non_negative)
    job_seconds_per_mib: float = attrs.field(default=2.0, converter=float, validator=_non_negative)
    jitter: float = attrs.field(default=0.0, converter=float, validator=_jitter)
    fetch_timing: Literal["after-answer", "before-answer"] = attrs.field(
        default="after-answer", validator=_fetch_timing
    )
    fault_rate: float = attrs.field(default=0.0, converter=float, validator=_probability)
    drop_rate: float = attrs.field(default=0.0, converter=float, validator=_probability)
    truncate_rate: float = attrs.field(default=0.0, converter=float, validator=_probability)
    job_failure_rate: float = attrs.field(default=0.0, converter=float, validator=_probability)
    latency: float = attrs.field(default=0.0, converter=float, validator=_non_negative)
    latency_min: float = attrs.field(default=0.0, converter=float, validator=_non_negative)
    bandwidth: float | None = attrs.field(default=None, validator=_optional_positive)
    accept_ranges_on_206: bool = False
    max_body_bytes: int = attrs.field(default=MIB, validator=_at_least_one)
    disk_threshold: int = attrs.field(default=4 * MIB, validator=_non_negative)
    max_media_bytes: int | None = attrs.field(default=None, validator=_optional_positive)
    media_dir: Path | None = attrs.field(default=None, converter=_optional_path)
    callback_attempts: int = attrs.field(default=5, validator=_at_least_one)
    callback_retry_delay: float = attrs.field(default=2.0, converter=float, validator=_non_negative)
    callback_timeout: float = attrs.field(default=10.0, converter=float, validator=_positive)
    callback_loss: float = attrs.field(default=0.0, converter=float, validator=_probability)
    fetch_timeout: float = attrs.field(default=60.0, converter=float, validator=_positive)
    strict_delete: bool = True
    public_url: str | None = attrs.field(default=None, validator=_public_url)
    restored_url_ttl: float | None = attrs.field(default=None, validator=_optional_positive)
    error_codes: Mapping[str, str] = attrs.field(factory=dict, converter=_codes)

    def __attrs_post_init__(self) -> None:
        if self.latency_min > self.latency:
            raise ValueError(
                f"latency_min must be at most latency, got latency_min={self.latency_min!r} and "
                f"latency={self.latency!r}"
            )

    @property
    def rate_window(self) -> float:
        """The sliding window of the rate limit in seconds: `rate_period * time_scale`."""
        return self.rate_period * self.time_scale

    def scaled(self, seconds: float) -> float:
        """Return `seconds` of service time in real seconds (times `time_scale`)."""
        return seconds * self.time_scale

    def with_faults(self, rate: float) -> EmulatorConfig:
        """Return a copy with every fault enabled, scaled from one rate (as `--fault-rate` does).

        500s at `rate`, drops and truncated downloads at `rate / 2`, failing jobs at `rate / 5`.
        """
        return attrs.evolve(
            self,
            fault_rate=rate,
            drop_rate=rate / 2,
            truncate_rate=rate / 2,
            job_failure_rate=rate / 5,
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{a.name}={getattr(self, a.name)!r}"
            for a in attrs.fields(EmulatorConfig)
            if a.name != "credentials"
        )
        return f"EmulatorConfig(credentials=<{len(self.credentials)} pair(s)>, {shown})"
