"""An independent Recuro Media REST API 1.0 server, written from the public API document alone.

Purpose: a second reading of the document (``/work/shared/seeds/000_03e6dea79bfb0e18.txt``) to check
the project's client and batch engine against a server their authors did not write. Nothing in this
module was taken from the project's own client, emulator or engine; it is a raw ASGI app (no
framework) plus a uvicorn runner on loopback.

What the document fixes, and this server does
---------------------------------------------
* One endpoint, ``POST {base}/api/1.0/`` (trailing slash optional; any ``/api/1.x[.y]/`` path is the
  same API). JSON in, JSON out. Every other method on the API path gets 405 from the "web server".
* ``Authorization: ApiKey:ApiSecret`` on every request, including the download. Whitespace around
  the value and around the colon is ignored.
* Actions ``UploadMedia``, ``StartJob``, ``GetProgress``, ``ListMedia``, ``ListFilters``,
  ``ListOutputFormats``, ``DeleteMedia``; request keys, action names, output-format and filter names
  are matched case-insensitively ("All requests are case insensitive").
* Status codes 200 / 400 / 500 only from the API; every non-200 API response carries
  ``{"error_code": ..., "error_message": ...}``. StartJob and DeleteMedia answer 200 with an empty
  body. ``FileIdMissing`` is used exactly as in the document's example.
* UploadMedia answers ``{"file_id": "ids-<n>.<ext>"}`` at once and fetches ``original_file_url`` in
  the background (HTTP GET, following redirects, Basic auth when ``username``/``password`` are
  given); when the fetch and the analysis end it POSTs the document's body to ``notify_url``.
* StartJob's ``notify_url`` gets the ``JobCompleted`` body with ``restored_file_url``.
* GetProgress states appear in the document's listed order; ``restored_file_url`` appears only once
  the state is ``JobCompleted``.
* ListMedia returns ``[{file_id, restored_file_url}]`` with ``""`` when there is no restored file.
* The download URL is ``{base}/download.php?guid=<uuid4>`` and is served with the same
  Authorization check.

Choices where the document is vague (each is a reading a reasonable implementer could make)
--------------------------------------------------------------------------------------------
* ``progress`` is sent as a JSON *string* (``"37.5"``, ``"100"``) because the document's only example
  response does so, even though its table says "float". Set ``progress_as_string=False`` for floats.
* ``progress`` is per state ("the progress for each state"): it restarts at 0 on every state change
  and rises linearly with the time spent in that state, reaching ``"100"`` at the end of
  ``MediaCompleted`` / ``JobCompleted`` (which stay at 100).
* Analysis states: ``MediaUploading`` (while the original is actually fetched), then ``MediaQueued``
  10 %, ``MediaInformation`` 15 %, ``MediaScenes`` 35 %, ``MediaAnalyze`` 40 % of the drawn analysis
  time, then ``MediaCompleted``. Job states follow the document's order literally (which puts
  ``JobPostProcessing`` before ``JobRunning``): ``JobQueued`` 10 %, ``JobPreProcessing`` 10 %,
  ``JobPostProcessing`` 10 %, ``JobRunning`` 55 %, ``JobUploading`` 15 %, then ``JobCompleted``. With
  the ``Colorize`` filter, ``JobQueuedColorization`` and ``JobColorizing`` are inserted where the
  document lists them (the job then takes 30 % longer).
* Durations (service seconds, multiplied by ``time_scale`` for wall time):
  ``analysis = (analysis_base + analysis_per_mib * MiB) * (1 + v)`` and
  ``job = (job_base + job_per_mib * MiB) * (1 + w)``, with ``v, w`` uniform in ``±variation``,
  drawn from ``random.Random(f"{seed}:{sha256(original)}:{kind}")`` -- so the draw depends on the
  seed and the media's bytes, not on the order requests arrive in. The drawn values are kept on the
  media record (``Media.analysis_s`` / ``Media.job_s``, wall seconds) for measurements.
* A premature StartJob (media not yet ``MediaCompleted``) is refused with 400
  ``{"error_code": "MediaNotReady"}``; a second StartJob on the same media with 400
  ``JobAlreadyStarted``. Unknown file ids get 400 ``FileIdInvalid``; an unknown format
  ``OutputFormatInvalid``; a missing format ``OutputFormatMissing``; an unknown filter
  ``FilterInvalid``; ``filters`` missing or not an array ``FiltersMissing`` (the document does not
  mark it optional; an empty array is accepted); a bad ``output_scaling`` ``OutputScalingInvalid``
  (``"1080"``/``"2160"``, strings or numbers). Missing/invalid ``original_file_url``:
  ``OriginalFileUrlMissing`` / ``OriginalFileUrlInvalid``. Unknown or missing action:
  ``ActionInvalid`` / ``ActionMissing``; a body that is not a JSON object: ``RequestInvalid``.
* Authentication failure: 400 ``{"error_code": "AuthenticationFailed"}`` (the API claims to use only
  200/400/500). Auth is checked before the rate limit; unauthenticated requests are logged but not
  counted in the window.
* Rate limit: a sliding window of ``rate_limit`` (200) admitted requests per ``60 * time_scale``
  seconds, counted at *arrival*. A request arriving when 200 admitted requests arrived within the
  last window is refused with 400 ``{"error_code": "RateLimitExceeded"}`` (no Retry-After header:
  the document names none) and the refusal itself is not counted in the window. Only API requests
  count: the download (download.php, not the API) does not.
* Latency: each request (API and download) draws a latency uniformly from ``latency`` (wall seconds,
  *not* scaled by ``time_scale``) from one seeded RNG in arrival order. ``upstream_fraction`` (0.5)
  of it is spent before the request "arrives" (before it is timestamped and counted by the rate
  limiter -- the request in transit), the rest after handling (the response in transit). So the
  server counts requests when they reach it, not when the client sent them, and network jitter can
  reorder/compress arrivals, as on a real network.
* notify_url: called once (POST, JSON, ``Content-Type: application/json``), no retry, 10 s timeout,
  failures ignored; ``callbacks=False`` never calls it (measures the client's fallback).
  ``callback_drop`` drops that seeded fraction of callbacks. A failed upload/analysis POSTs
  ``{"file_id", "error_code": "MediaFailed" | "MediaFormatUnsupported", "error_message"}``.
* A media whose fetch or analysis failed answers GetProgress with 400 and that error code (the
  document's state list has no failure state); it stays listed until deleted.
* Analysis sniffs the fetched bytes and fails with ``MediaFormatUnsupported`` unless they look like
  one of the supported formats (MKV, MOV/MP4 ``ftyp``/``moov``/``mdat``/``wide``/``free`` box, MP3,
  MPG, MXF, WAV). ``file_id`` keeps the URL's extension when it is a supported one, else ``.mp4``.
* Restored media bytes: ``original + free_box`` where ``free_box`` is an MP4 ``free`` box (8-byte
  header, size 40) holding ``sha256(original || output_format || ",".join(filters) ||
  output_scaling)``. Served with ``Content-Length``, ``Content-Type`` by format,
  ``Content-Disposition: attachment; filename="<stem>.<ext>"`` (``.mxf``/``.mov``/``.mp4`` by
  format), ``Accept-Ranges: bytes``, a strong ``ETag`` and single-range support (206 /
  ``Content-Range``; 416 when unsatisfiable), and HEAD. An unknown or deleted guid is a plain 404
  from the "web server"; a download before the job completed is the same 404.
* DeleteMedia works in any state (cancelling the fetch, analysis or job) and invalidates the
  download URL; deleting an unknown id is 400 ``FileIdInvalid``.
* ListFilters / ListOutputFormats list every name the document gives (the filter list's typo
  ``NaturalSpeed"`` is read as ``NaturalSpeed``), with descriptions and example URLs made up in the
  document's style.

Test knobs beyond the document: ``callbacks`` / ``callback_drop`` (lost callbacks) and
``download_fault`` (``truncate_once``: the first GET of each restored file sends the full
Content-Length, half the body, then drops the connection; ``ignore_range``: Range is ignored).

In-process use: ``async with run_server(ServerConfig(...)) as srv:`` gives ``srv.base_url`` (the API
URL), ``srv.state.log`` (``LogEntry(t, action, file_id, status, error_code, done, entered)``: ``t`` is
the arrival time as counted by the rate limiter, ``entered`` when the request reached the app before
the upstream latency, ``done`` when the response was sent, all wall seconds since start),
``srv.state.downloads`` (same, action ``Download``), ``srv.state.callbacks_sent``,
``srv.state.media`` (live) / ``srv.state.all_media`` (every media ever, with its drawn durations), and
helpers ``max_in_window`` / ``counts``. Standalone:
``python tests/independent/recuro_server.py --port 8700 --time-scale 0.1``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import struct
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import httpx

OUTPUT_FORMATS: dict[str, str] = {
    "MxfDnxHrHqx": "MXF (DNxHR HQX)",
    "MxfDnxHr444": "MXF (DNxHR 444)",
    "MovProRes422Hq": "MOV (ProRes 422 HQ)",
    "MovProRes4444": "MOV (ProRes 4444)",
    "Mp4H264": "MP4 (H.264)",
    "Mp4Hevc": "MP4 (HEVC)",
}
FILTERS: list[str] = [
    "LightDustAndScratches",
    "MediumDustAndScratches",
    "HeavyDustAndScratches",
    "Noise",
    "ReGrain",
    "ColorBalance",
    "ColorSaturation",
    "ContrastExpansion",
    "Colorize",
    "ImageStabilization",
    "ReduceFlicker",
    "ContentStabilization",
    "VerticalScratches",
    "RepairDeinterlace",
    "HighFrameRate",
    "BadSceneChanges",
    "ColorCasting",
    "AdaptiveSharpness",
    "NaturalSpeed",
    "NormalizeVolume",
    "ReduceNoise",
    "IncreaseClarity",
]
SUPPORTED_EXT = ("mkv", "mov", "mp3", "mp4", "mpg", "mxf", "wav")
ANALYSIS_PHASES = (
    ("MediaQueued", 0.10),
    ("MediaInformation", 0.15),
    ("MediaScenes", 0.35),
    ("MediaAnalyze", 0.40),
)
JOB_PHASES = (
    ("JobQueued", 0.10),
    ("JobPreProcessing", 0.10),
    ("JobPostProcessing", 0.10),
    ("JobRunning", 0.55),
    ("JobUploading", 0.15),
)
COLOR_JOB_PHASES = (
    ("JobQueued", 0.08),
    ("JobQueuedColorization", 0.08),
    ("JobPreProcessing", 0.08),
    ("JobColorizing", 0.23),
    ("JobPostProcessing", 0.08),
    ("JobRunning", 0.33),
    ("JobUploading", 0.12),
)
MIB = 1024 * 1024


@dataclass
class ServerConfig:
    api_key: str = "indep-key"
    api_secret: str = "indep-secret"
    time_scale: float = 1.0
    rate_limit: int = 200
    rate_window_s: float = 60.0  # service seconds; wall = rate_window_s * time_scale
    latency: tuple[float, float] = (0.0, 0.0)  # wall seconds, not scaled
    upstream_fraction: float = 0.5
    seed: int = 1
    analysis_base: float = 30.0  # service seconds
    analysis_per_mib: float = 20.0
    job_base: float = 60.0
    job_per_mib: float = 40.0
    variation: float = 0.3
    callbacks: bool = True
    callback_drop: float = 0.0
    progress_as_string: bool = True
    # Comma-separated. "truncate_once": the first GET of each restored file sends the full Content-Length but only half
    # the body, then drops the connection. "ignore_range": Range headers are ignored (always 200, whole file).
    download_fault: str | None = None
    host: str = "127.0.0.1"
    port: int = 0


@dataclass
class LogEntry:
    t: float  # wall seconds since server start, at arrival
    action: str
    file_id: str | None
    status: int
    error_code: str | None = None
    done: float | None = None  # wall seconds since server start, when the response was sent
    entered: float | None = (
        None  # when the connection handed the request over, before the upstream latency
    )


@dataclass
class Media:
    file_id: str
    original_url: str
    created: float
    notify_url: str | None
    state: str = "MediaUploading"
    error: tuple[str, str] | None = None
    original: bytes = b""
    size: int = 0
    analysis_s: float = 0.0  # wall seconds drawn
    job_s: float = 0.0
    phase_plan: list[tuple[str, float, float]] = field(default_factory=list)  # (state, start, end)
    analysis_started: float | None = None
    analysis_done_at: float | None = None
    job_started: float | None = None
    job_done_at: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    restored: bytes | None = None
    guid: str | None = None
    deleted: bool = False
    cancel: anyio.CancelScope | None = None


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def sniff(data: bytes) -> bool:
    """Whether the bytes look like one of the document's supported formats."""
    if len(data) >= 8 and data[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return True
    if data[:4] == b"\x1a\x45\xdf\xa3":  # Matroska / EBML
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return True
    if data[:3] == b"ID3" or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return True
    if data[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG-PS / MPEG-1 video
        return True
    return data[:4] == b"\x06\x0e\x2b\x34"  # MXF KLV key


def mp4_bytes(size: int, seed: int) -> bytes:
    """A minimal MP4 that `sniff` accepts: an ``ftyp`` box then an ``mdat`` box of seeded random payload,
    ``size`` bytes in all (inputs for the tests and the measurement)."""
    ftyp = struct.pack(">I4s4sI", 32, b"ftyp", b"isom", 0x200) + b"isomiso2avc1mp41"
    payload = random.Random(seed).randbytes(size - len(ftyp) - 8)
    return ftyp + struct.pack(">I4s", 8 + len(payload), b"mdat") + payload


def restored_bytes(original: bytes, output_format: str, filters: list[str], scaling: str) -> bytes:
    """The deterministic "restored" file: the original followed by an MP4 ``free`` box with a digest."""
    digest = hashlib.sha256(
        original + output_format.encode() + ",".join(filters).encode() + scaling.encode()
    ).digest()
    return original + struct.pack(">I", 8 + len(digest)) + b"free" + digest


def _ext_for_format(fmt: str) -> tuple[str, str]:
    if fmt.startswith("Mxf"):
        return "mxf", "application/mxf"
    if fmt.startswith("Mov"):
        return "mov", "video/quicktime"
    return "mp4", "video/mp4"


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ServerState:
    """All server state: media, the rate window, the request log; everything readable in-process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.t0 = time.monotonic()
        self.media: dict[str, Media] = {}
        self.all_media: dict[str, Media] = {}  # never pruned, for measurements
        self.by_guid: dict[str, Media] = {}
        self.window: deque[float] = deque()
        self.log: list[LogEntry] = []
        self.downloads: list[LogEntry] = []
        self.callbacks_sent: list[tuple[float, str, dict[str, Any], int | None]] = []
        self._latency_rng = random.Random(f"{config.seed}:latency")
        self._drop_rng = random.Random(f"{config.seed}:callbacks")
        self._next_id = 345643 + random.Random(config.seed).randrange(100000)
        self.truncated: set[str] = set()
        self.task_group: anyio.abc.TaskGroup | None = None
        self.http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------ helpers
    def now(self) -> float:
        return time.monotonic() - self.t0

    def window_s(self) -> float:
        return self.config.rate_window_s * self.config.time_scale

    def draw_latency(self) -> float:
        lo, hi = self.config.latency
        return self._latency_rng.uniform(lo, hi) if hi > 0 else 0.0

    def admit(self, t: float) -> bool:
        w = self.window_s()
        while self.window and self.window[0] <= t - w:
            self.window.popleft()
        if len(self.window) >= self.config.rate_limit:
            return False
        self.window.append(t)
        return True

    def max_in_window(self, *, admitted_only: bool = False) -> int:
        """The most API requests (authenticated, by arrival) inside any half-open window of the rate length."""
        times = sorted(
            e.t
            for e in self.log
            if e.error_code != "AuthenticationFailed"
            and not (admitted_only and e.error_code == "RateLimitExceeded")
        )
        w = self.window_s()
        best = 0
        j = 0
        for i, t in enumerate(times):
            while times[j] <= t - w:
                j += 1
            best = max(best, i - j + 1)
        return best

    def counts(self) -> Counter[str]:
        return Counter(e.action for e in self.log)

    # ------------------------------------------------------------ progress
    def progress(self, m: Media) -> tuple[str, float]:
        now = self.now()
        if m.state in ("MediaUploading", "MediaCompleted", "JobCompleted"):
            return m.state, (100.0 if m.state != "MediaUploading" else 0.0)
        for name, start, end in m.phase_plan:
            if now < end:
                frac = 0.0 if end <= start else max(0.0, min(1.0, (now - start) / (end - start)))
                return name, round(100.0 * frac, 1)
        return m.state, (100.0 if m.phase_plan else 0.0)

    # ------------------------------------------------------------ background work
    def _durations(self, m: Media) -> None:
        c = self.config
        digest = hashlib.sha256(m.original).hexdigest()
        mib = m.size / MIB
        va = random.Random(f"{c.seed}:{digest}:analysis").uniform(-c.variation, c.variation)
        vj = random.Random(f"{c.seed}:{digest}:job").uniform(-c.variation, c.variation)
        m.analysis_s = (c.analysis_base + c.analysis_per_mib * mib) * (1 + va) * c.time_scale
        m.job_s = (c.job_base + c.job_per_mib * mib) * (1 + vj) * c.time_scale

    def _plan(self, m: Media, phases: tuple[tuple[str, float], ...], total: float) -> None:
        start = self.now()
        plan = []
        for name, frac in phases:
            plan.append((name, start, start + frac * total))
            start += frac * total
        m.phase_plan = plan

    async def _sleep_through_plan(self, m: Media) -> None:
        for name, _start, end in m.phase_plan:
            m.state = name
            delay = end - self.now()
            if delay > 0:
                await anyio.sleep(delay)

    async def notify(self, url: str | None, body: dict[str, Any]) -> None:
        if not url or not self.config.callbacks:
            return
        if self.config.callback_drop and self._drop_rng.random() < self.config.callback_drop:
            self.callbacks_sent.append((self.now(), url, body, None))
            return
        status: int | None = None
        assert self.http is not None
        with contextlib.suppress(Exception):
            r = await self.http.post(
                url, content=_json(body), headers={"Content-Type": "application/json"}, timeout=10.0
            )
            status = r.status_code
        self.callbacks_sent.append((self.now(), url, body, status))

    async def run_analysis(self, m: Media, username: str | None, password: str | None) -> None:
        with anyio.CancelScope() as scope:
            m.cancel = scope
            try:
                assert self.http is not None
                auth = (username or "", password or "") if (username or password) else None
                r = await self.http.get(
                    m.original_url, auth=auth, follow_redirects=True, timeout=60.0
                )
                if r.status_code != 200:
                    raise ApiError(  # noqa: TRY301
                        "MediaFailed",
                        f"Could not download the original media (HTTP {r.status_code}).",
                    )
                m.original = r.content
                m.size = len(m.original)
                if not sniff(m.original):
                    raise ApiError(  # noqa: TRY301
                        "MediaFormatUnsupported", "The media is not in a supported format."
                    )
                self._durations(m)
                m.analysis_started = self.now()
                self._plan(m, ANALYSIS_PHASES, m.analysis_s)
                await self._sleep_through_plan(m)
                m.state = "MediaCompleted"
                m.analysis_done_at = self.now()
                m.phase_plan = []
            except ApiError as e:
                m.error = (e.code, e.message)
            except httpx.HTTPError as e:
                m.error = (
                    "MediaFailed",
                    f"Could not download the original media ({type(e).__name__}).",
                )
            m.cancel = None
        if scope.cancelled_caught or m.deleted:
            return
        if m.error:
            body = {"file_id": m.file_id, "error_code": m.error[0], "error_message": m.error[1]}
        else:
            body = {
                "file_id": m.file_id,
                "error_code": "MediaCompleted",
                "error_message": "Media completed successfully.",
            }
        await self.notify(m.notify_url, body)

    async def run_job(self, m: Media, notify_url: str | None) -> None:
        with anyio.CancelScope() as scope:
            m.cancel = scope
            colorize = "Colorize" in m.settings["filters"]
            total = m.job_s * (1.3 if colorize else 1.0)
            m.job_started = self.now()
            self._plan(m, COLOR_JOB_PHASES if colorize else JOB_PHASES, total)
            await self._sleep_through_plan(m)
            m.restored = restored_bytes(
                m.original,
                m.settings["output_format"],
                m.settings["filters"],
                m.settings["output_scaling"],
            )
            m.guid = str(uuid.uuid4())
            self.by_guid[m.guid] = m
            m.state = "JobCompleted"
            m.job_done_at = self.now()
            m.phase_plan = []
            m.cancel = None
        if scope.cancelled_caught or m.deleted:
            return
        await self.notify(
            notify_url,
            {
                "file_id": m.file_id,
                "error_code": "JobCompleted",
                "error_message": "Job completed successfully.",
                "restored_file_url": self.restored_url(m),
            },
        )

    base_url: str = ""

    def restored_url(self, m: Media) -> str:
        return f"{self.base_url}download.php?guid={m.guid}" if m.guid else ""

    # ------------------------------------------------------------ actions
    def _media(self, req: dict[str, Any]) -> Media:
        fid = req.get("file_id")
        if fid is None or fid == "":
            raise ApiError("FileIdMissing", "You need to specify a 'file_id' in your request.")
        m = self.media.get(str(fid).lower())
        if m is None:
            raise ApiError("FileIdInvalid", f"No media with file_id '{fid}'.")
        return m

    def handle(self, action: str, req: dict[str, Any]) -> tuple[int, Any]:
        if action == "listmedia":
            return 200, [
                {"file_id": m.file_id, "restored_file_url": self.restored_url(m)}
                for m in self.media.values()
            ]
        if action == "listfilters":
            return 200, [
                {
                    "name": f,
                    "description": f"Applies the {f} restoration filter.",
                    "example_url": f"https://www.recuromedia.com/movies/{f}.mp4",
                }
                for f in FILTERS
            ]
        if action == "listoutputformats":
            return 200, [{"name": k, "long_name": v} for k, v in OUTPUT_FORMATS.items()]
        if action == "uploadmedia":
            return self.upload(req)
        if action == "startjob":
            return self.start_job(req)
        if action == "getprogress":
            m = self._media(req)
            if m.error:
                raise ApiError(*m.error)
            state, pct = self.progress(m)
            out: dict[str, Any] = {"state": state, "progress": self._fmt_progress(pct)}
            if state == "JobCompleted":
                out["restored_file_url"] = self.restored_url(m)
            return 200, out
        if action == "deletemedia":
            m = self._media(req)
            m.deleted = True
            if m.cancel is not None:
                m.cancel.cancel()
            del self.media[m.file_id.lower()]
            if m.guid:
                self.by_guid.pop(m.guid, None)
            return 200, None
        raise ApiError("ActionInvalid", f"Unknown action '{action}'.")

    def _fmt_progress(self, pct: float) -> str | float:
        if not self.config.progress_as_string:
            return pct
        return str(int(pct)) if pct == int(pct) else f"{pct:.1f}"

    def upload(self, req: dict[str, Any]) -> tuple[int, Any]:
        url = req.get("original_file_url")
        if not url:
            raise ApiError(
                "OriginalFileUrlMissing",
                "You need to specify an 'original_file_url' in your request.",
            )
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiError(
                "OriginalFileUrlInvalid", "The 'original_file_url' is not a valid http(s) URL."
            )
        ext = parts.path.rsplit(".", 1)[-1].lower() if "." in parts.path.rsplit("/", 1)[-1] else ""
        if ext not in SUPPORTED_EXT:
            ext = "mp4"
        self._next_id += 1
        fid = f"ids-{self._next_id}.{ext}"
        m = Media(fid, str(url), self.now(), req.get("notify_url") or None)
        self.media[fid.lower()] = m
        self.all_media[fid] = m
        assert self.task_group is not None
        self.task_group.start_soon(self.run_analysis, m, req.get("username"), req.get("password"))
        return 200, {"file_id": fid}

    def start_job(self, req: dict[str, Any]) -> tuple[int, Any]:
        m = self._media(req)
        fmt = req.get("output_format")
        if not fmt:
            raise ApiError(
                "OutputFormatMissing", "You need to specify an 'output_format' in your request."
            )
        canon_fmt = {k.lower(): k for k in OUTPUT_FORMATS}.get(str(fmt).lower())
        if canon_fmt is None:
            raise ApiError("OutputFormatInvalid", f"Unknown output format '{fmt}'.")
        filters = req.get("filters")
        if not isinstance(filters, list):
            raise ApiError(
                "FiltersMissing", "You need to specify 'filters' as an array in your request."
            )
        canon = {f.lower(): f for f in FILTERS}
        out_filters = []
        for f in filters:
            c = canon.get(str(f).lower())
            if c is None:
                raise ApiError("FilterInvalid", f"Unknown filter '{f}'.")
            out_filters.append(c)
        scaling = req.get("output_scaling")
        scaling_s = "" if scaling in (None, "") else str(scaling)
        if scaling_s not in ("", "1080", "2160"):
            raise ApiError(
                "OutputScalingInvalid",
                "Supported values for 'output_scaling' are '1080' and '2160'.",
            )
        if m.error:
            raise ApiError(*m.error)
        if m.job_started is not None or m.state.startswith("Job"):
            raise ApiError("JobAlreadyStarted", "A job has already been started for this media.")
        if m.state != "MediaCompleted":
            raise ApiError(
                "MediaNotReady", "The media has not completed uploading and analysis yet."
            )
        m.settings = {
            "output_format": canon_fmt,
            "filters": out_filters,
            "output_scaling": scaling_s,
        }
        m.state = "JobQueued"
        m.job_started = self.now()
        assert self.task_group is not None
        self.task_group.start_soon(self.run_job, m, req.get("notify_url") or None)
        return 200, None


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class RecuroApp:
    """The raw ASGI application."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def _authorized(self, scope: Scope) -> bool:
        for k, v in scope.get("headers", []):
            if k.lower() == b"authorization":
                raw = v.decode("latin-1").strip()
                key, sep, secret = raw.partition(":")
                return (
                    bool(sep)
                    and key.strip() == self.state.config.api_key
                    and secret.strip() == self.state.config.api_secret
                )
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        scope["recuro.entered"] = self.state.now()
        latency = self.state.draw_latency()
        up = latency * self.state.config.upstream_fraction
        if up > 0:
            await anyio.sleep(up)
        if path.rstrip("/").endswith("/download.php") or path == "/download.php":
            await self.download(scope, send, latency - up)
            return
        if "/api/" not in path:
            await self._send(send, 404, b"Not Found", "text/plain", latency - up)
            return
        if scope["method"] != "POST":
            await self._send(send, 405, b"Method Not Allowed", "text/plain", latency - up)
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        t = self.state.now()
        action_name = "?"
        file_id: str | None = None
        status = 200
        error_code: str | None = None
        payload: Any = None
        try:
            try:
                req_raw = json.loads(body or b"null")
            except ValueError:
                req_raw = None
            req = (
                {str(k).lower(): v for k, v in req_raw.items()}
                if isinstance(req_raw, dict)
                else None
            )
            if req is not None:
                action_name = str(req.get("action") or "?")
                fid = req.get("file_id")
                file_id = str(fid) if fid else None
            if not self._authorized(scope):
                raise ApiError(  # noqa: TRY301
                    "AuthenticationFailed",
                    "The API key and secret in the Authorization header are not valid.",
                )
            if not self.state.admit(t):
                raise ApiError(  # noqa: TRY301
                    "RateLimitExceeded",
                    f"The API is rate limited to a maximum of {self.state.config.rate_limit} requests/minute.",
                )
            if req is None:
                raise ApiError("RequestInvalid", "The request body must be a JSON object.")  # noqa: TRY301
            action = req.get("action")
            if not action:
                raise ApiError("ActionMissing", "You need to specify an 'action' in your request.")  # noqa: TRY301
            status, payload = self.state.handle(str(action).lower(), req)
            if isinstance(payload, dict) and "file_id" in payload and file_id is None:
                file_id = payload["file_id"]
        except ApiError as e:
            status, error_code = e.status, e.code
            payload = {"error_code": e.code, "error_message": e.message}
        except Exception as e:  # a server bug is a 500 with the documented body
            status, error_code = 500, "InternalError"
            payload = {"error_code": "InternalError", "error_message": f"{type(e).__name__}: {e}"}
        entry = LogEntry(
            t, action_name, file_id, status, error_code, entered=scope["recuro.entered"]
        )
        self.state.log.append(entry)
        data = b"" if payload is None else _json(payload)
        await self._send(send, status, data, "application/json" if data else None, latency - up)
        entry.done = self.state.now()

    async def _send(
        self,
        send: Send,
        status: int,
        data: bytes,
        ctype: str | None,
        delay: float,
        extra: list[tuple[bytes, bytes]] | None = None,
        *,
        head: bool = False,
    ) -> None:
        if delay > 0:
            await anyio.sleep(delay)
        headers = [(b"content-length", str(len(data)).encode())]
        if ctype:
            headers.append((b"content-type", ctype.encode()))
        headers += extra or []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else data})

    async def download(self, scope: Scope, send: Send, delay: float) -> None:
        t = self.state.now()
        head = scope["method"] == "HEAD"
        guid = (parse_qs(scope.get("query_string", b"").decode()).get("guid") or [""])[0]
        m = self.state.by_guid.get(guid)
        if scope["method"] not in ("GET", "HEAD"):
            status = 405
            await self._send(send, 405, b"Method Not Allowed", "text/plain", delay)
        elif not self._authorized(scope):
            status = 400
            await self._send(
                send,
                400,
                _json(
                    {
                        "error_code": "AuthenticationFailed",
                        "error_message": "The API key and secret in the Authorization header are not valid.",
                    }
                ),
                "application/json",
                delay,
            )
        elif m is None or m.restored is None:
            status = 404
            await self._send(send, 404, b"Not Found", "text/plain", delay)
        else:
            data = m.restored
            ext, ctype = _ext_for_format(m.settings["output_format"])
            stem = m.file_id.rsplit(".", 1)[0]
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            extra = [
                (b"accept-ranges", b"bytes"),
                (b"etag", etag.encode()),
                (b"content-disposition", f'attachment; filename="{stem}.{ext}"'.encode()),
            ]
            rng = None
            for k, v in scope.get("headers", []):
                if k.lower() == b"range":
                    rng = v.decode("latin-1").strip()
            status = 200
            body = data
            fault = self.state.config.download_fault or ""
            if "truncate_once" in fault and not head and guid not in self.state.truncated:
                self.state.truncated.add(guid)
                if delay > 0:
                    await anyio.sleep(delay)
                hdrs = [
                    (b"content-length", str(len(data)).encode()),
                    (b"content-type", ctype.encode()),
                    *extra,
                ]
                await send({"type": "http.response.start", "status": 200, "headers": hdrs})
                await send(
                    {
                        "type": "http.response.body",
                        "body": data[: len(data) // 2],
                        "more_body": True,
                    }
                )
                self.state.downloads.append(
                    LogEntry(
                        t,
                        "Download",
                        m.file_id,
                        299,
                        "Truncated",
                        self.state.now(),
                        scope["recuro.entered"],
                    )
                )
                return  # the server drops the connection mid-body
            if rng and "ignore_range" not in fault:
                start, end = self._parse_range(rng, len(data))
                if start is None:
                    status = 416
                    extra = [(b"content-range", f"bytes */{len(data)}".encode())]
                    body = b""
                elif end is not None:
                    status = 206
                    body = data[start : end + 1]
                    extra.append((b"content-range", f"bytes {start}-{end}/{len(data)}".encode()))
            await self._send(
                send, status, body, ctype if status != 416 else None, delay, extra, head=head
            )
        self.state.downloads.append(
            LogEntry(
                t,
                "Download",
                m.file_id if m else None,
                status,
                None,
                self.state.now(),
                scope["recuro.entered"],
            )
        )

    @staticmethod
    def _parse_range(value: str, size: int) -> tuple[int | None, int | None]:
        """(start, end) of a single ``bytes=`` range; (None, None) when unsatisfiable; (0, None) to ignore it."""
        unit, _, spec = value.partition("=")
        if unit.strip().lower() != "bytes" or "," in spec:
            return 0, None  # not understood: serve the whole file
        first, _, last = spec.strip().partition("-")
        try:
            if first == "":
                n = int(last)
                if n <= 0:
                    return None, None
                return max(0, size - n), size - 1
            start = int(first)
            end = int(last) if last else size - 1
        except ValueError:
            return 0, None
        if start >= size or end < start:
            return None, None
        return start, min(end, size - 1)


@dataclass
class RunningServer:
    state: ServerState
    root_url: str

    @property
    def base_url(self) -> str:
        return f"{self.root_url}api/1.0/"


@contextlib.asynccontextmanager
async def run_server(config: ServerConfig | None = None) -> AsyncIterator[RunningServer]:
    """Serve the app with uvicorn on loopback inside the caller's event loop."""
    import socket

    import uvicorn

    config = config or ServerConfig()
    state = ServerState(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    port = sock.getsockname()[1]
    root = f"http://{config.host}:{port}/"
    state.base_url = root
    uv = uvicorn.Server(
        uvicorn.Config(
            RecuroApp(state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_keep_alive=30,
        )
    )
    async with httpx.AsyncClient() as http, anyio.create_task_group() as tg:
        state.http = http
        state.task_group = tg
        tg.start_soon(uv.serve, [sock])
        while not uv.started:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        try:
            yield RunningServer(state, root)
        finally:
            uv.should_exit = True
            tg.cancel_scope.cancel()
    sock.close()


def main() -> None:
    p = argparse.ArgumentParser(description="Independent Recuro API 1.0 server on loopback.")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency", type=float, nargs=2, default=(0.0, 0.0), metavar=("LO", "HI"))
    p.add_argument("--no-callbacks", action="store_true")
    a = p.parse_args()
    cfg = ServerConfig(
        port=a.port,
        time_scale=a.time_scale,
        seed=a.seed,
        latency=tuple(a.latency),
        callbacks=not a.no_callbacks,
    )

    async def serve() -> None:
        async with run_server(cfg) as srv:
            print(  # noqa: T201
                f"RECURO_BASE_URL={srv.base_url}\nRECURO_API_KEY={cfg.api_key}\nRECURO_API_SECRET={cfg.api_secret}",
                flush=True,
            )
            await anyio.sleep_forever()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve)


if __name__ == "__main__":
    main()
