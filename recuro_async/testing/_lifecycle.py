"""The media and job state machine, driven by the monotonic clock.

A media file's states after its fetch, and a job's states once started, are a timeline of segments fixed
when the timeline begins; GetProgress locates `now` on it, so answering costs nothing per item and no task
ticks. Only what must happen at a moment (fetching the original, making the restored file, POSTing a
callback) runs as a task, in the service (`_service.py`).

Durations vary per media and per job when `jitter` is set: `jitter_factor` draws each factor from its own
`random.Random` seeded by the seed and the file_id, never from a shared stream, so the times do not depend on
the order in which tasks happen to run.

Queueing: jobs share `max_concurrent_jobs` slots, first come first served. A job's slot is chosen when it is
started (the earliest slot to free up), so its JobQueued wait is known at once; a deleted or failed job keeps
its slot until the moment its timeline had reserved (failed: until it failed).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

import anyio
import attrs

from recuro_async.testing._catalog import ApiError
from recuro_async.testing._media import Blob, JobSettings

MEDIA_SHARES: tuple[tuple[str, float], ...] = (
    ("MediaQueued", 0.1),
    ("MediaInformation", 0.2),
    ("MediaScenes", 0.3),
    ("MediaAnalyze", 0.4),
)
JOB_SHARES: tuple[tuple[str, float], ...] = (
    ("JobPreProcessing", 0.15),
    ("JobPostProcessing", 0.15),
    ("JobRunning", 0.55),
    ("JobUploading", 0.15),
)
COLORIZE_JOB_SHARES: tuple[tuple[str, float], ...] = (
    ("JobQueuedColorization", 0.1),
    ("JobPreProcessing", 0.1),
    ("JobColorizing", 0.35),
    ("JobPostProcessing", 0.1),
    ("JobRunning", 0.25),
    ("JobUploading", 0.1),
)
# Progress shown while the timeline is over but the restored file is still being written.
ALMOST_DONE = 99.9


@attrs.frozen
class Segment:
    """One state held from `start` to `end` (monotonic seconds)."""

    state: str
    start: float
    end: float


def timeline(
    start: float, duration: float, shares: Sequence[tuple[str, float]]
) -> tuple[Segment, ...]:
    """Split `duration` seconds from `start` into consecutive segments by share."""
    segments = []
    t = start
    for state, share in shares:
        end = t + duration * share
        segments.append(Segment(state, t, end))
        t = end
    return tuple(segments)


def jitter_factor(jitter: float, seed: int, *parts: str | int) -> float:
    """A duration multiplier drawn uniformly from [1 - jitter, 1 + jitter] by a Random of its own.

    Seeded by `seed` and `parts` (the file_id and what is timed), so the same media gets the same factor
    whatever else runs; exactly 1.0 when `jitter` is 0.
    """
    if jitter == 0:
        return 1.0
    key = ":".join(map(str, ("recuro-emulator", seed, *parts)))
    return random.Random(key).uniform(1.0 - jitter, 1.0 + jitter)


def locate(segments: Sequence[Segment], now: float) -> tuple[str, float] | None:
    """Return (state, progress 0-100) at `now`, or None when `now` is past the last segment."""
    for seg in segments:
        if now < seg.end:
            span = seg.end - seg.start
            done = 0.0 if span <= 0 else max(0.0, now - seg.start) / span
            return seg.state, round(min(100.0, 100.0 * done), 1)
    return None


@attrs.frozen
class ProcessingTimes:
    """The processing times drawn for one media file, in real seconds (kept after DeleteMedia).

    Attributes:
        analysis: MediaQueued..MediaAnalyze, once the original was fetched (None before, or if it failed).
        jobs: each accepted job's running time, JobQueued wait excluded, in the order they were started.
    """

    analysis: float | None = None
    jobs: tuple[float, ...] = ()


@attrs.frozen
class Snapshot:
    """What GetProgress answers: the state, its progress, and the restored file's guid once completed."""

    state: str
    progress: float
    guid: str | None = None


@attrs.define(eq=False)
class Job:
    """A restoration job on one media file.

    Attributes:
        settings: the canonical job settings.
        guid: the restored file's id in download.php?guid=.
        notify_url: where to POST the completion callback, or None.
        origin: the origin the restored_file_url of the callback is built on.
        submitted_at, start_at, end_at: when StartJob arrived, the job left JobQueued, its timeline ends.
        fail_at: when an injected failure ends the job, or None.
        segments: the timeline from JobQueued to JobUploading.
        restored: the restored file once written.
        ready: set once `restored` is written.
        last_modified: the wall-clock time the restored file was written (Last-Modified).
    """

    settings: JobSettings
    guid: str
    notify_url: str | None
    origin: str
    submitted_at: float
    start_at: float
    end_at: float
    fail_at: float | None
    segments: tuple[Segment, ...]
    restored: Blob | None = None
    ready: anyio.Event = attrs.field(factory=anyio.Event)
    last_modified: float = 0.0

    def failed(self, now: float) -> bool:
        """Whether the job has failed by `now`."""
        return self.fail_at is not None and now >= self.fail_at

    def completed(self, now: float) -> bool:
        """Whether the job is in JobCompleted at `now`."""
        return not self.failed(now) and now >= self.end_at and self.restored is not None


@attrs.define(eq=False)
class Media:
    """One uploaded media file of one account.

    Attributes:
        file_id: its id.
        owner: the API key that uploaded it.
        original_url: original_file_url as given.
        name: the file name taken from the URL (for Content-Disposition).
        notify_url: the UploadMedia callback URL, or None.
        username, password: credentials for the fetch (never shown).
        created_at: when UploadMedia arrived.
        received, total: bytes fetched so far, and the Content-Length of the original when known.
        original: the fetched bytes.
        container: the sniffed container.
        segments: the analysis timeline (MediaQueued..MediaAnalyze), once fetched.
        error: (error_code, error_message) once the media failed.
        job: the current (last) job.
        deleted: whether DeleteMedia removed it.
        fetch_scope: cancels the fetch when the media is deleted.
        fetched: set once the fetch of the original has ended, whatever its outcome (UploadMedia waits
            for it with `fetch_timing="before-answer"`).
        jobs_started: how many jobs StartJob has accepted on it (numbers each job's jitter draw).
    """

    file_id: str
    owner: str
    original_url: str
    name: str
    notify_url: str | None
    username: str | None = attrs.field(repr=False)
    password: str | None = attrs.field(repr=False)
    created_at: float
    received: int = 0
    total: int | None = None
    original: Blob | None = None
    container: str | None = None
    segments: tuple[Segment, ...] | None = None
    error: tuple[str, str] | None = None
    job: Job | None = None
    deleted: bool = False
    fetch_scope: anyio.CancelScope | None = attrs.field(default=None, repr=False)
    fetched: anyio.Event = attrs.field(factory=anyio.Event, repr=False)
    jobs_started: int = 0

    @property
    def media_done_at(self) -> float | None:
        """When the media reaches MediaCompleted (None while fetching or after a failure)."""
        if self.segments is None or self.error is not None:
            return None
        return self.segments[-1].end if self.segments else 0.0

    def media_completed(self, now: float) -> bool:
        """Whether the media has reached MediaCompleted by `now`."""
        done = self.media_done_at
        return done is not None and now >= done

    def snapshot(self, now: float) -> Snapshot:
        """Return the GetProgress answer at `now`, or raise the failure as an ApiError."""
        if self.error is not None:
            raise ApiError(*self.error)
        if self.segments is None:
            percent = 0.0
            if self.total:
                percent = min(ALMOST_DONE, round(100.0 * self.received / self.total, 1))
            return Snapshot("MediaUploading", percent)
        job = self.job
        if job is None:
            where = locate(self.segments, now)
            return Snapshot(*where) if where else Snapshot("MediaCompleted", 100.0)
        if job.failed(now):
            raise ApiError("JobFailed", "The restoration job failed; StartJob may be sent again.")
        where = locate(job.segments, now)
        if where is not None:
            return Snapshot(*where)
        if job.restored is None:
            return Snapshot("JobUploading", ALMOST_DONE)
        return Snapshot("JobCompleted", 100.0, job.guid)

    def next_change(self, now: float) -> float | None:
        """The next moment after `now` at which the timeline alone changes the state, or None."""
        times = [seg.end for seg in self.segments or ()]
        if self.job is not None:
            times += [seg.end for seg in self.job.segments]
            if self.job.fail_at is not None:
                times.append(self.job.fail_at)
        later = [t for t in times if t > now]
        return min(later) if later else None

    def restored_guid(self, now: float) -> str | None:
        """The guid of the restored file when the job is completed at `now`, else None."""
        job = self.job
        return job.guid if job is not None and job.completed(now) else None


class JobSlots:
    """`capacity` job slots; each new job takes the earliest slot to free up."""

    def __init__(self, capacity: int) -> None:
        self._free_at = [0.0] * capacity

    def reserve(
        self, now: float, run: float, fail_point: float | None
    ) -> tuple[float, float, float | None]:
        """Reserve a slot for a job of `run` seconds; return (start, end, fail_at or None)."""
        free = heapq.heappop(self._free_at)
        start = max(now, free)
        end = start + run
        fail_at = None if fail_point is None else start + run * fail_point
        heapq.heappush(self._free_at, end if fail_at is None else fail_at)
        return start, end, fail_at

    def queued(self, now: float) -> int:
        """How many slots are busy at `now`."""
        return sum(1 for t in self._free_at if t > now)
