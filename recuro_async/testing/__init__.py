"""An emulator of the Recuro Media API 1.0, for tests, benchmarks and the embedded demo.

An independent implementation of the seed document (``seeds/000_03e6dea79bfb0e18.txt``): it shares no code
with the client. Run it in-process (``httpx.ASGITransport(app=emulator.app)`` inside ``async with
emulator``) or on loopback (``await tg.start(emulator.serve)``, or ``async with run_emulator(config)``), or
from a shell with ``recuro emulator`` / ``python -m recuro_async.testing``.

Requests: ``POST /api/1.0/`` with a JSON object and ``Authorization: KEY:SECRET``; action names and keys in
any case. Successful answers are 200 with a JSON body, or an empty body for StartJob and DeleteMedia.

Error codes (body ``{"error_code": ..., "error_message": ...}``):

======================  ======  ===================================================================
error_code              status  when
======================  ======  ===================================================================
AuthorizationMissing    400     no Authorization header (401 on download.php)
AuthorizationInvalid    400     not ``KEY:SECRET``, or an unknown pair (401 on download.php)
RateLimitExceeded       400     more than ``rate_limit`` admitted requests in the sliding window of
                                this API key; with ``refusal="429"``: HTTP 429 with Retry-After (whole
                                seconds, rounded up). Refused requests are not counted.
RequestTooLarge         400     body larger than ``max_body_bytes`` (1 MiB); answered with
                                ``Connection: close``
RequestInvalid          400     body is not a JSON object (malformed JSON, not UTF-8, an array...)
ActionMissing           400     no ``action`` (or null / "")
ActionInvalid           400     ``action`` not a string, or not one of the seven actions
FileIdMissing           400     no ``file_id`` (or null / ""): the document's own example
FileIdInvalid           400     ``file_id`` not a string
OriginalFileUrlMissing  400     UploadMedia without ``original_file_url``
OriginalFileUrlInvalid  400     ``original_file_url`` not an http(s) URL string
UsernameInvalid         400     ``username`` not a string
PasswordInvalid         400     ``password`` not a string
NotifyUrlInvalid        400     ``notify_url`` not an http(s) URL string
OutputFormatMissing     400     StartJob without ``output_format``
OutputFormatInvalid     400     unknown format (names match case-insensitively) or not a string
FiltersMissing          400     StartJob without ``filters`` (``[]`` is allowed)
FiltersInvalid          400     not an array of strings, or an unknown filter name
OutputScalingInvalid    400     ``output_scaling`` not '1080' or '2160' (the ints are accepted too)
MediaNotFound           400     unknown file_id, a deleted one, or one of another API key; also
                                DeleteMedia of such an id (unless ``strict_delete=False``: then 200)
MediaNotReady           400     StartJob before the media reached MediaCompleted
JobAlreadyStarted       400     StartJob while a job runs or after it completed (after JobFailed a new
                                StartJob is accepted)
MediaUploadFailed       400     GetProgress/StartJob after fetching original_file_url failed
                                (connection error, non-200 answer, larger than ``max_media_bytes``)
MediaFormatUnsupported  400     GetProgress/StartJob when the original is not MKV, MOV, MP3, MP4, MPG,
                                MXF or WAV (magic numbers first, else the URL's extension)
JobFailed               400     GetProgress once the job failed (injected ``job_failure_rate``)
InternalError           500     an injected fault (``fault_rate``; no effect took place) or a bug
GuidMissing             400     download.php without ``guid``
RestoredFileNotFound    404     download.php with an unknown guid, another key's, or a deleted one
RangeNotSatisfiable     416     download.php with a Range starting past the end (Content-Range
                                ``bytes */SIZE``)
======================  ======  ===================================================================

Not API answers (as a web server would give them, text/plain): 404 for any other path, 405 for another
method on the API or download.php.

Failures are a representation of their own: a failed media or job keeps its last state internally but
GetProgress answers HTTP 400 with the failure's error_code (MediaUploadFailed, MediaFormatUnsupported or
JobFailed), and the notify_url callback carries the same ``{file_id, error_code, error_message}``.
Callbacks (the document's exact bodies) are retried on a transport error, 408, 425, 429 or 5xx,
``callback_attempts`` times with pauses of ``callback_retry_delay * time_scale`` doubling. ``callback_loss=P``
(``recuro emulator --callback-loss P``) never sends a seeded share P of them (1.0: a server that never calls
back); ``callbacks_lost`` names them.

Time: ``time_scale`` multiplies processing durations (media analysis ``media_base_seconds +
media_seconds_per_mib * MiB``; a job ``job_base_seconds + job_seconds_per_mib * MiB``, x1.5 with Colorize,
x1.25 at 1080, x2 at 2160), callback retry pauses, and the rate-limit window (``rate_period *
time_scale``). MediaUploading lasts as long as the real fetch of the original. ``jitter=F`` (``recuro
emulator --jitter F``) multiplies each media's analysis time and each job's running time by its own seeded
factor from [1-F, 1+F] (the document names no times; default 0: exact).

UploadMedia: the document does not say whether the original is fetched before the answer. By default
(``fetch_timing="after-answer"``) the file_id is answered at once and the fetch runs in the background;
``fetch_timing="before-answer"`` (``--fetch-timing before-answer``) fetches the whole original first, as a
server validating the link synchronously would, then answers the file_id (a failed fetch still fails the
media with MediaUploadFailed, seen by GetProgress and the callback).
"""

from __future__ import annotations

import contextlib

from recuro_async.testing._callbacks import CallbackAttempt
from recuro_async.testing._catalog import ACTIONS, CONTAINERS, FILTERS, OUTPUT_FORMATS, STATES
from recuro_async.testing._cli import main as emulator_main
from recuro_async.testing._config import (
    ALTERNATE_ERROR_CODES,
    DEMO_API_KEY,
    DEMO_API_SECRET,
    EmulatorConfig,
)
from recuro_async.testing._emulator import (
    RecuroEmulator,
    RunningEmulator,
    bind_socket,
    run_emulator,
    serve_asgi,
)
from recuro_async.testing._faults import FaultRecord
from recuro_async.testing._lifecycle import ProcessingTimes
from recuro_async.testing._log import LogEntry
from recuro_async.testing._media import (
    expected_restored_bytes,
    expected_restored_file,
    restored_size,
    sniff_container,
)
from recuro_async.testing._samples import make_samples

__all__ = [
    "ACTIONS",
    "ALTERNATE_ERROR_CODES",
    "CONTAINERS",
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "FILTERS",
    "OUTPUT_FORMATS",
    "STATES",
    "CallbackAttempt",
    "EmulatorConfig",
    "FaultRecord",
    "LogEntry",
    "ProcessingTimes",
    "RecuroEmulator",
    "RunningEmulator",
    "bind_socket",
    "emulator_main",
    "expected_restored_bytes",
    "expected_restored_file",
    "make_samples",
    "restored_size",
    "run_emulator",
    "serve_asgi",
    "sniff_container",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
