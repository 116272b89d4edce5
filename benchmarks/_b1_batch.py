"""B1: a batch through the Recuro pipeline against the emulator over loopback, ours vs two baselines.

Ours is the shipped command, ``recuro restore`` over local files (staged by its own file server), run as
its own process. The emulators run in one separate process (`benchmarks._emuhost`): the orchestrator's
CPU and RSS are then its own, each gets a core, and the request log stays readable. Everything is
time-scaled: processing durations, the rate window (the client gets ``RateLimit(200, 60 * ts)`` through
``--time-scale``) and the baselines' poll interval, so ratios are scale-free.
"""

from __future__ import annotations

import collections
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from benchmarks._measure import (
    MIB,
    ROOT,
    EmulatorHost,
    ProcStats,
    Section,
    Settings,
    Table,
    Target,
    fmt,
    max_in_window,
    median,
    python_env,
    run_measured,
)
from orchestrator.cli._restore import DEFAULT_MAX_ACTIVE
from recuro_async.testing import expected_restored_bytes

LIMIT = 200
PERIOD = 60.0
MAX_ACTIVE = 200  # --max-active of the headline runs: one window's worth of items on the account
_JOB: dict[str, Any] = {"output_format": "Mp4H264", "filters": ["Noise"], "output_scaling": None}
# the emulator's default service times (EmulatorConfig), seconds at time scale 1
_MEDIA_BASE, _MEDIA_PER_MIB, _JOB_BASE, _JOB_PER_MIB = 4.0, 0.5, 10.0, 2.0
_LATENCY = (0.02, 0.4)  # real seconds: the emulator's delay of each API answer, uniform, seeded
# the latency run, as the independent server of issue 14 was set: the rate window scaled to 6 s, the
# service's processing stretched so that the slowest item (~20 s) and not the rate bounds the batch
_SLOW_SCALE, _SLOW_STRETCH = 0.1, 11.0
_JITTER = (
    0.3  # and random processing times: each analysis and job time x a seeded factor in [0.7, 1.3]
)


@attrs.frozen
class Outcome:
    """One batch run as the emulator and the OS saw it."""

    name: str
    items: int
    time_scale: float
    proc: ProcStats
    requests: int
    by_action: dict[str, int]
    max_window: int
    max_window_admitted: int
    refused: int
    bound: float  # real seconds, for the items this run processed
    bound_parts: tuple[
        float, float, float
    ]  # calls / rate, slowest item, bytes / bandwidth (real s)
    bound_all: float  # real seconds, for the whole batch at this run's time scale
    # with drawn (jittered) times: median seconds from MediaCompleted to StartJob's arrival, and from
    # JobCompleted to the download's (both as the emulator's clock and draws place them)
    lags: tuple[float, float] | None = None


def make_inputs(directory: Path, n: int, seed: int) -> list[Path]:
    """`n` MP4-looking originals of 256 KiB to 1.75 MiB (mean 1 MiB)."""
    rng = random.Random(f"{seed}:b1")
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = directory / f"reel{i:05d}.mp4"
        size = rng.randint(256 * 1024, 1792 * 1024)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.randbytes(size - 12))
        paths.append(path)
    return paths


def processing_seconds(size: int, stretch: float = 1.0) -> float:
    """The emulator's own processing time for one original (analysis + job), at time scale 1."""
    mib = size / MIB
    return (_MEDIA_BASE + _MEDIA_PER_MIB * mib + _JOB_BASE + _JOB_PER_MIB * mib) * stretch


def stretched(stretch: float) -> dict[str, float]:
    """Emulator settings that multiply its processing times by `stretch`."""
    return {
        "media_base_seconds": _MEDIA_BASE * stretch,
        "media_seconds_per_mib": _MEDIA_PER_MIB * stretch,
        "job_base_seconds": _JOB_BASE * stretch,
        "job_seconds_per_mib": _JOB_PER_MIB * stretch,
    }


def lower_bound(
    inputs: list[Path], time_scale: float, bandwidth: float, stretch: float = 1.0
) -> tuple[float, tuple[float, float, float]]:
    """SPEC 7's bound in real seconds: the larger of calls / rate, the slowest item, bytes / bandwidth.

    Required calls are the three no client can avoid per item (UploadMedia, StartJob, DeleteMedia).
    """
    calls = 3 * len(inputs) / (LIMIT / (PERIOD * time_scale))
    slowest = max(processing_seconds(p.stat().st_size, stretch) for p in inputs) * time_scale
    header = len(expected_restored_bytes(b"", **_JOB))
    transfer = sum(p.stat().st_size + header for p in inputs) / bandwidth
    return max(calls, slowest, transfer), (calls, slowest, transfer)


def verify(inputs: list[Path], out: Path, name_of: str = "same") -> int:
    """Count the outputs that are byte-identical to the expected restored files (raises on a mismatch)."""
    good = 0
    for original in inputs:
        target = out / original.name if name_of == "same" else out / name_of.format(original.stem)
        expected = expected_restored_bytes(original.read_bytes(), **_JOB)
        if target.read_bytes() != expected:
            raise AssertionError(f"{target}: not the expected restored bytes")
        good += 1
    return good


def _log_figures(log: dict[str, Any]) -> dict[str, Any]:
    api = [e for e in log["entries"] if e[1] != "download"]
    return {
        "requests": len(api),
        "by_action": dict(collections.Counter(e[1] for e in api)),
        "max_window": max_in_window([e[0] for e in api], log["window"]),
        "max_window_admitted": max_in_window(log["admitted"], log["window"]),
        "refused": len(log["refused"]),
    }


def _restore_command() -> list[str]:
    """``recuro restore`` if the dispatcher has it, else the restore module's own entry point."""
    probe = run_measured(
        [sys.executable, "-m", "orchestrator.cli.recuro", "restore", "--help"],
        cwd=ROOT,
        env=python_env(),
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "orchestrator.cli.recuro", "restore"]
    return [sys.executable, "-m", "orchestrator.cli._restore"]


class Bench:
    """The inputs, the emulator host and the figures of one B1 run."""

    def __init__(
        self, host: EmulatorHost, work: Path, inputs: list[Path], bandwidth: float
    ) -> None:
        self.host = host
        self.work = work
        self.inputs = inputs
        self.bandwidth = bandwidth
        info = host.info
        self.env = python_env()
        self.env["RECURO_API_KEY"] = self.env["BENCH_RECURO_KEY"] = info["api_key"]
        self.env["RECURO_API_SECRET"] = self.env["BENCH_RECURO_SECRET"] = info["api_secret"]

    def _outcome(
        self,
        name: str,
        emulator: str,
        inputs: list[Path],
        ts: float,
        proc: ProcStats,
        *,
        stretch: float = 1.0,
        whole: list[Path] | None = None,
        drawn: bool = False,
    ) -> Outcome:
        log = self.host.call("log", emulator=emulator)
        figures = _log_figures(log)
        bound, parts = lower_bound(inputs, ts, self.bandwidth, stretch)
        bound_all, _ = lower_bound(whole or self.inputs, ts, self.bandwidth, stretch)
        lags = None
        if drawn:  # the slowest item is the one that drew the longest times, not the largest
            slowest, lags = self._drawn(emulator, log["entries"])
            parts = (parts[0], slowest, parts[2])
            bound = bound_all = max(parts)
        return Outcome(
            name=name,
            items=len(inputs),
            time_scale=ts,
            proc=proc,
            bound=bound,
            bound_parts=parts,
            bound_all=bound_all,
            lags=lags,
            **figures,
        )

    def _drawn(self, emulator: str, entries: list[list[Any]]) -> tuple[float, tuple[float, float]]:
        """The slowest item's drawn processing (real s) and the median lags of `Outcome.lags`, from the
        emulator's request log `entries`."""
        first: dict[tuple[str, str], float] = {}
        for at, action, status, file_id in entries:
            if file_id and status in (200, 206):
                first.setdefault((action, file_id), at)
        uploaded = sorted({f for (a, f) in first if a == "UploadMedia"})
        times = self.host.call("times", emulator=emulator, file_ids=uploaded)["times"]
        done = {f: t for f, t in times.items() if t[0] is not None and len(t) > 1}
        slowest = max(t[0] + sum(t[1:]) for t in done.values())
        start_lags, end_lags = [], []
        for f, t in done.items():
            started = first.get(("StartJob", f))
            fetched = first.get(("download", f))
            if started is not None:
                start_lags.append(started - (first[("UploadMedia", f)] + t[0]))
            if started is not None and fetched is not None:
                end_lags.append(fetched - (started + t[-1]))
        return slowest, (median(start_lags), median(end_lags))

    def ours(
        self,
        name: str,
        emulator: str,
        ts: float,
        *,
        webhook: bool,
        command: list[str],
        max_active: int | None = None,
        kills: tuple[float, ...] = (),
        inputs: list[Path] | None = None,
        stretch: float = 1.0,
        drawn: bool = False,
    ) -> Outcome:
        """Run ``recuro restore`` over the local inputs.

        With `kills`, the process is SIGKILLed that many seconds after each start and started again with
        the same command (the journal resumes it); the last run goes to the end. The figures then cover
        every run: requests from the emulator's log, wall and CPU summed.
        """
        inputs = inputs or self.inputs
        listing = self.work / f"{name}.list"
        listing.write_text("\n".join(str(p) for p in inputs) + "\n")
        out = self.work / f"out-{name}"
        argv = [
            *command,
            "--from-file",
            str(listing),
            "--format",
            _JOB["output_format"],
            *[x for f in _JOB["filters"] for x in ("--filter", f)],
            "--out",
            str(out),
            "--time-scale",
            repr(ts),
            *(["--max-active", str(max_active)] if max_active else []),
            "--base-url",
            self.host.info["emulators"][emulator]["base_url"],
        ]
        if webhook:
            argv += ["--notify-url", "local"]
        killed = [run_measured(argv, cwd=self.work, env=self.env, timeout=at) for at in kills]
        proc = run_measured(argv, cwd=self.work, env=self.env, timeout=1800)
        for run in killed:
            if run.returncode == 0:
                raise RuntimeError(f"{name}: a run meant to be killed finished first; kill sooner")
            proc = attrs.evolve(
                proc,
                wall=proc.wall + run.wall,
                user=proc.user + run.user,
                system=proc.system + run.system,
                max_rss_mib=max(proc.max_rss_mib, run.max_rss_mib),
            )
        if proc.returncode != 0:
            raise RuntimeError(f"recuro restore exited {proc.returncode}: {proc.stderr[-800:]}")
        verify(inputs, out)
        shutil.rmtree(out, ignore_errors=True)
        return self._outcome(
            name, emulator, inputs, ts, proc, stretch=stretch, whole=inputs, drawn=drawn
        )

    def baseline(self, kind: str, emulator: str, ts: float, n: int) -> Outcome:
        """Run one baseline over the first `n` inputs, given as URLs of the host's file server."""
        inputs = self.inputs[:n]
        origin = self.host.info["files_origin"]
        listing = self.work / f"{kind}.urls"
        listing.write_text("\n".join(f"{origin}/files/{p.name}" for p in inputs) + "\n")
        out = self.work / f"out-{kind}"
        argv = [
            sys.executable,
            "-m",
            "benchmarks._baselines",
            kind,
            str(listing),
            str(out),
            "--base-url",
            self.host.info["emulators"][emulator]["base_url"],
            "--time-scale",
            repr(ts),
        ]
        proc = run_measured(argv, cwd=ROOT, env=self.env, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"baseline {kind} exited {proc.returncode}: {proc.stderr[-800:]}")
        verify(inputs, out)
        shutil.rmtree(out, ignore_errors=True)
        return self._outcome(kind, emulator, inputs, ts, proc)


def _bandwidth(host: EmulatorHost, work: Path) -> float:
    """Loopback download bandwidth of the emulator, bytes/s: curl fetching a 64 MiB restored file."""
    url = host.call("restore", emulator="bw", file="bandwidth.mp4")["url"]
    info = host.info
    dest = work / "bw-out"
    dest.mkdir()
    auth = f"{info['api_key']}:{info['api_secret']}"
    proc = run_measured(
        [shutil.which("curl") or "curl", "-s", "-o", "x", "-H", f"Authorization:{auth}", url],
        cwd=dest,
    )
    size = (dest / "x").stat().st_size
    shutil.rmtree(dest, ignore_errors=True)
    return size / proc.wall


def run(settings: Settings) -> Section:
    """Run B1 and report it."""
    started = time.perf_counter()
    quick = settings.quick
    n, ts, n_seq, ts_naive = (60, 0.05, 4, 0.05) if quick else (500, 0.25, 6, 0.05)
    work = settings.work / "b1"
    work.mkdir(parents=True, exist_ok=True)
    try:
        section = _run(settings, work, n=n, ts=ts, n_seq=n_seq, ts_naive=ts_naive)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section.seconds = time.perf_counter() - started
    return section


def _run(
    settings: Settings, work: Path, *, n: int, ts: float, n_seq: int, ts_naive: float
) -> Section:
    files = work / "files"
    inputs = make_inputs(files, n, settings.seed)
    (files / "bandwidth.mp4").write_bytes(
        b"\x00\x00\x00\x18ftypmp42" + random.Random(1).randbytes(64 * MIB)
    )

    def emulator(name: str, scale: float, **changes: Any) -> dict[str, Any]:
        return {
            "time_scale": scale,
            "max_concurrent_jobs": 4 * n,
            "max_concurrent_fetches": 64,
            "media_dir": str(work / f"emu-{name}"),
            **changes,
        }

    n_slow = 30 if settings.quick else 120
    slow = {
        "latency_min": _LATENCY[0],
        "latency": _LATENCY[1],
        "jitter": _JITTER,
        "seed": settings.seed,
        **stretched(_SLOW_STRETCH),
    }
    rng = random.Random(f"{settings.seed}:b1-kills")
    bound_ours, _ = lower_bound(inputs, ts, float("inf"))
    kills = tuple(round(rng.uniform(0.15, 0.6) * bound_ours, 3) for _ in range(3))

    spec = {
        "files": str(files),
        "emulators": {
            "ours-poll": emulator("ours-poll", ts),
            "ours-hook": emulator("ours-hook", ts),
            "ours-default": emulator("ours-default", ts_naive),
            "concurrent": emulator("concurrent", ts_naive),
            "sequential": emulator("sequential", ts),
            "ours-latency": emulator("ours-latency", _SLOW_SCALE, **slow),
            "ours-silent": emulator("ours-silent", _SLOW_SCALE, **slow, callback_loss=1.0),
            "ours-killed": emulator("ours-killed", ts),
            "bw": {"time_scale": 1e-4, "media_dir": str(work / "emu-bw")},
        },
    }
    command = _restore_command()
    with EmulatorHost(spec, stderr_path=work / "host.stderr") as host:
        bandwidth = _bandwidth(host, work)
        (files / "bandwidth.mp4").unlink()
        bench = Bench(host, work, inputs, bandwidth)
        outcomes = [
            bench.ours(
                "ours, polling",
                "ours-poll",
                ts,
                webhook=False,
                command=command,
                max_active=MAX_ACTIVE,
            ),
            bench.ours(
                "ours, webhooks",
                "ours-hook",
                ts,
                webhook=True,
                command=command,
                max_active=MAX_ACTIVE,
            ),
            bench.ours(
                "ours, polling, default --max-active",
                "ours-default",
                ts_naive,
                webhook=False,
                command=command,
            ),
            bench.baseline("concurrent", "concurrent", ts_naive, n),
            bench.baseline("sequential", "sequential", ts, n_seq),
            *(
                bench.ours(
                    name,
                    emulator_name,
                    _SLOW_SCALE,
                    webhook=False,
                    command=command,
                    max_active=MAX_ACTIVE,
                    inputs=inputs[:n_slow],
                    stretch=_SLOW_STRETCH,
                    drawn=True,
                )
                for name, emulator_name in (
                    ("ours, polling, latency", "ours-latency"),
                    ("ours, polling, latency, no callbacks", "ours-silent"),
                )
            ),
            bench.ours(
                "ours, polling, killed 3 times",
                "ours-killed",
                ts,
                webhook=False,
                command=command,
                max_active=MAX_ACTIVE,
                kills=kills,
            ),
        ]
    return _report(outcomes, n, ts, bandwidth, command, kills=kills)


def _report(
    outcomes: list[Outcome],
    n: int,
    ts: float,
    bandwidth: float,
    command: list[str],
    *,
    kills: tuple[float, ...],
) -> Section:
    section = Section("B1", f"batch of {n} items through the Recuro pipeline")
    poll, hook, default, naive, seq, slow, silent, killed = outcomes
    section.method = [
        (
            f"{n} MP4 originals of 256 KiB-1.75 MiB (mean 1 MiB); job Mp4H264 + Noise. Emulator at time scale "
            f"{ts:g} (processing {processing_seconds(MIB):.1f} s x scale for a 1 MiB item; rate window "
            f"{PERIOD * ts:g} s), max_concurrent_jobs {4 * n} so its job queue is not the bottleneck; all "
            "emulators in one separate process."
        ),
        (
            f"Ours: `{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))} --from-file LIST "
            f"--format Mp4H264 --filter Noise --out DIR --time-scale {ts:g} --max-active {MAX_ACTIVE}` over "
            "local files (staged by its built-in file server), in polling mode and with `--notify-url local` "
            "(webhooks), each as its own process; outputs verified byte for byte. Also once in polling mode "
            f"with the default `--max-active` ({DEFAULT_MAX_ACTIVE}) at time scale {default.time_scale:g}, "
            "to show what the default costs."
        ),
        (
            "Baselines (`benchmarks/_baselines.py`, raw httpx as a reader of the document would write them) get "
            "the originals as URLs on a separate file server, so they do no staging: sequential (one file at a "
            "time, GetProgress every 5 s scaled) and concurrent (`asyncio.gather` over all files, per-file "
            "GetProgress every 5 s scaled, every call inside `aiolimiter.AsyncLimiter(200, 60 * ts)` as is); "
            "on a RateLimitExceeded they sleep 5 s (scaled) and send again."
        ),
        (
            f"The concurrent baseline (and the default --max-active run) run at time scale "
            f"{naive.time_scale:g} to save time; the sequential one on the first "
            f"{seq.items} items only, extrapolated linearly to {n} (one file at a time is linear by construction). "
            "Everything scales with the time scale, so wall / bound compares across scales."
        ),
        (
            f"Lower bound = max(3 required calls per item / (200 per {PERIOD:g} s x scale), the slowest item's "
            f"own processing, restored bytes / loopback bandwidth of {bandwidth / MIB:,.0f} MiB/s measured with "
            "curl). Requests and windows come from the emulator's request log (server arrival times; downloads "
            "are not API requests); 'admitted' counts only what the emulator's rate limit let through."
        ),
        (
            f"'latency' (as issue 14's independent server): {slow.items} items, every API answer delayed "
            f"by {_LATENCY[0] * 1000:g}-{_LATENCY[1] * 1000:g} ms (uniform, seeded, real time), rate window "
            f"{PERIOD * _SLOW_SCALE:g} s "
            f"(time scale {_SLOW_SCALE:g}) and the service's processing stretched x {_SLOW_STRETCH:g} "
            f"and drawn at random (each analysis and job time x a seeded factor in "
            f"[{1 - _JITTER:g}, {1 + _JITTER:g}]), so the slowest item's own processing (as drawn, read back "
            "from the emulator), not the rate, is the lower bound. 'no callbacks': the same, against a "
            "server that never calls any notify_url back (emulator `callback_loss` 1.0), so analysis ends "
            "are learned by polling alone. 'killed 3 times': the "
            "process is SIGKILLed "
            f"{', '.join(f'{k:.1f}' for k in kills)} s after each of three starts (seeded), started again "
            "each time, and the fourth run goes to the end; requests, wall and CPU cover all four runs."
        ),
    ]
    rows = []
    for o in outcomes:
        factor = (
            n / o.items if o.name == "sequential" else 1
        )  # (only it runs a sample of the batch)
        wall = o.proc.wall * factor
        rows.append(
            [
                o.name,
                str(o.items),
                f"{o.time_scale:g}",
                fmt(o.proc.wall, 1)
                + (f" (x {factor:g} = {wall:.0f} extrapolated)" if factor != 1 else ""),
                fmt(o.bound_all, 1),
                fmt(wall / o.bound_all, 2),
                str(o.requests),
                fmt(o.requests / o.items, 2),
                f"{o.max_window} / {o.max_window_admitted}",
                str(o.refused),
                fmt(o.proc.cpu / o.items * 1000, 1),
                fmt(o.proc.max_rss_mib, 1),
            ]
        )
    section.tables.append(
        Table(
            "Batch runs",
            [
                "run",
                "items",
                "time scale",
                "wall s",
                "lower bound s",
                "wall / bound",
                "API requests",
                "per item",
                "most in any window: arrived / admitted",
                "refused",
                "CPU ms per item",
                "peak RSS MiB",
            ],
            rows,
        )
    )
    actions = sorted({a for o in outcomes for a in o.by_action})
    section.tables.append(
        Table(
            "API requests by action",
            ["run", *actions],
            [[o.name, *(str(o.by_action.get(a, 0)) for a in actions)] for o in outcomes],
        )
    )
    parts = [[o.name, *(fmt(p, 2) for p in o.bound_parts)] for o in outcomes]
    section.tables.append(
        Table(
            "Lower bound parts (real seconds, for the items each run processed)",
            ["run", "3 calls per item / rate", "slowest item", "bytes / bandwidth"],
            parts,
        )
    )
    worst = max(poll.max_window, hook.max_window)
    section.targets = [
        Target(
            "requests in any sliding window (B1)",
            f"never above {LIMIT}",
            f"ours {poll.max_window} polling, {hook.max_window} webhooks; concurrent baseline "
            f"{naive.max_window} arrived ({naive.refused} refused)",
            worst <= LIMIT,
            "server-counted from the emulator's request log",
        ),
        Target(
            "API requests per restored file, polling mode (B1)",
            "<= 4.0",
            f"{poll.requests / n:.2f} (concurrent baseline {naive.requests / naive.items:.2f}, "
            f"sequential {seq.requests / seq.items:.2f})",
            poll.requests / n <= 4.0,
        ),
        Target(
            "API requests per restored file, polling, with latency (B1)",
            "<= 3.3",
            f"{slow.requests / slow.items:.2f} ({slow.items} items)",
            slow.requests / slow.items <= 3.3,
        ),
        Target(
            "API requests per restored file across a run killed three times (B1)",
            "<= 4.0",
            f"{killed.requests / n:.2f}",
            killed.requests / n <= 4.0,
            "requests of all four runs, server-counted",
        ),
        Target(
            "API requests per restored file, webhook mode (B1)",
            "<= 3.1",
            f"{hook.requests / n:.2f}",
            hook.requests / n <= 3.1,
            "`--notify-url local`",
        ),
        Target(
            "batch wall time / lower bound (B1)",
            "<= 1.10",
            f"{poll.proc.wall / poll.bound:.2f} polling, {hook.proc.wall / hook.bound:.2f} webhooks "
            f"(default --max-active {default.proc.wall / default.bound:.2f}; concurrent baseline {naive.proc.wall / naive.bound:.2f}, sequential "
            f"{seq.proc.wall * n / seq.items / seq.bound_all:.1f} extrapolated to {n})",
            poll.proc.wall / poll.bound <= 1.10,
            f"--max-active {MAX_ACTIVE}; wall of the whole process (start-up included)",
        ),
        Target(
            "batch wall time / lower bound with latency (B1)",
            "<= 1.15",
            f"{slow.proc.wall / slow.bound:.2f}",
            slow.proc.wall / slow.bound <= 1.15,
            "API answers delayed as in 'latency'",
        ),
    ]
    lag_note = []
    if slow.lags is not None:
        lag_note.append(
            f"'latency' acting on what it learns: StartJob reached the service a median "
            f"{slow.lags[0]:.2f} s after the media completed, and the download a median {slow.lags[1]:.2f} s "
            f"after the job completed (one answer delay is {_LATENCY[0]:g}-{_LATENCY[1]:g} s; completion "
            "times are the upload's arrival plus the drawn analysis time, so the first figure includes the "
            "original's fetch, which the upload seal holds until the upload's answer is in the journal)."
        )
    lag_note.append(
        f"'no callbacks' (no target: the document says UploadMedia's notify_url is called): "
        f"{silent.requests / silent.items:.2f} requests per item, wall / bound "
        f"{silent.proc.wall / silent.bound:.2f}, against {slow.requests / slow.items:.2f} and "
        f"{slow.proc.wall / slow.bound:.2f} with the callbacks."
    )
    section.notes = [
        *lag_note,
        (
            f"Peak RSS of ours: {poll.proc.max_rss_mib:.1f} MiB polling, {hook.proc.max_rss_mib:.1f} MiB "
            "webhooks (sampled VmHWM of the process)."
        ),
    ]
    return section
