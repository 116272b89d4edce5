"""An emulator of the MediaCrush server, for tests, demos and benchmarks (MEDIACRUSH.md, SPEC section 4).

It follows what the real server did (``MediaCrush/MediaCrush`` at ``b32e275``), with a switch in
``EmulatorConfig`` for each place where the public document says otherwise. It shares no code with the
client: ids, wire shapes and status rules are written here independently. Run it in-process
(``httpx.ASGITransport(app=emulator.app)`` inside ``async with emulator``; requests then come from
127.0.0.1, so ``X-Real-IP`` chooses the client address) or on loopback (``await tg.start(emulator.serve)``
or ``async with run_emulator(config)``), or from a shell with ``mediacrush emulator`` /
``python -m mediacrush_async.testing``.

Routes (MEDIACRUSH.md section 3). JSON is sorted and indented by 2 with Python 2's trailing space after
line-ending commas (compact with ``X-Requested-With: XMLHttpRequest``), no final newline; errors are
``{"error": code}`` with that HTTP code; ``?callback=`` gives JSONP; any non-empty ``X-CORS-Status``
gives 200 plus ``"x-status"``. A missing required form field is Werkzeug's HTML 400, a server error the
app's HTML 500.

=================================  ===========================================================================
route                              answers
=================================  ===========================================================================
POST /api/upload/file (``file``)   200 ``{"hash"}``; 409 ``{"error": 409, "hash": h, h: object}``; 420;
                                   nginx HTML 413 over ``max_body_size``; 403 with ``read_only``
POST /api/upload/url (``url``)     as above after fetching; 400 (bad URL, fetch error, no Content-Length),
                                   404 (remote 404), 413 (over ``max_url_size``)
GET /api/<h>, GET /<h>.json        file or album object; 404; a failed file is an HTML 500
GET /api/info?list=a,b             ``{a: object or null}``; an emptied album is ``[{"error": 404}, 404]``
GET /api/<h>/exists                ``{"exists": true}``, else 404 ``{"exists": false}``
GET /api/<h>/status                ``{"status"}`` + ``"hash"`` and ``h: object`` once the type is known;
                                   415 for an album
GET /api/status?list=a,b           ``{a: {"status", "file"} | {"status"} | null}``; an album: HTML 500
GET, POST /api/<h>/flags           ``{"flags"}``; POST: 401 not owner, 415 unknown flag (nothing saved);
                                   only the exact string ``true`` is true
POST /api/<h>/text                 title/description: 200, 400 neither, 401, 404, 414 over 2048
DELETE /api/<h>                    ``{"status": "success"}``; 401 not owner (or a failed file); 404
GET /api/<h>/delete                302 to the HTML page ``/<h>/delete``
POST /api/album/create (``list``)  ``{"hash"}`` (12 hex); 404 unknown item, 415 item not a file, then
                                   413 over ``max_album_items``
POST /api/album/zip (``hash``)     ``{"status": "success"}`` then ``"done"``; 415 without hash; 404
POST /api/url/info (``list``)      ``{url: object or null}`` for URLs uploaded here
POST /api/feedback                 success; 413 over 10000 characters; 420 after 5 a day
POST /api/upload/noscript          302 to ``/status/<h>``
GET /<hash>.<ext>                  stored files, nginx-style: ETag, Last-Modified, Range/If-Range (206,
                                   416), If-None-Match (304); CORS headers on 2xx/3xx only
GET /_emulator/log                 the request log as JSON (not logged itself)
POST /_emulator/failure            ``hash``, ``status``, ``count``: force processing failures
=================================  ===========================================================================

Processing (durations in seconds times ``time_scale``): ``pending`` for ``detect_seconds`` (0.5; type
unknown: ``blob_type`` null, ``flags`` {}, only the original listed), then unrecognised types fail,
then ``pending`` for ``queue_seconds`` (0.5) with the full object, ``processing`` for
``processing_seconds`` (4) x factor (video 1, audio 0.5, images 0.25, JPEG/SVG 0.1) + 0.25 per MiB,
``ready`` for ``finishing_seconds`` (4) x factor (0 for JPEG), then ``done``. The original is stored
when processing starts, browser-ready outputs and the thumbnail at ``ready``, ``.ogv``/``.ogg`` at
``done``. A failure (forced, seeded ``failure_rate``, or non-media) replaces the file with its status.
"""

from __future__ import annotations

from ._cli import main as emulator_main
from ._config import EmulatorConfig
from ._derived import expected_derived_bytes
from ._emulator import MediaCrushEmulator, RunningEmulator, run_emulator
from ._log import LogEntry
from ._media import content_hash_of
from ._samples import DEMO_SAMPLES, SAMPLE_KINDS, make_samples, sample_media

__all__ = [
    "DEMO_SAMPLES",
    "SAMPLE_KINDS",
    "EmulatorConfig",
    "LogEntry",
    "MediaCrushEmulator",
    "RunningEmulator",
    "content_hash_of",
    "emulator_main",
    "expected_derived_bytes",
    "make_samples",
    "run_emulator",
    "sample_media",
]

for _obj in (EmulatorConfig, LogEntry, MediaCrushEmulator, RunningEmulator, run_emulator):
    _obj.__module__ = __name__
for _func in (content_hash_of, emulator_main, expected_derived_bytes, make_samples, sample_media):
    _func.__module__ = __name__
del _obj, _func
