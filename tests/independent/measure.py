"""A B1-like batch against the independent server: requests per item, wall / bound, refused StartJobs.

Scenario: 120 MP4 inputs of 256 KiB - 1.75 MiB, per-request latency uniform in 20-400 ms (wall, not
scaled), time scale 0.1 on both sides (rate window 6 s, 200 requests per window), analysis and job
durations growing with size with ±30 % seeded variation, sized so the slowest item's own processing
is about 20 s of wall time. The bound is the largest drawn analysis + job time of any item (wall
seconds); no batch can finish faster than that.

    PYTHONPATH=. python tests/independent/measure.py                 # callbacks honoured
    PYTHONPATH=. python tests/independent/measure.py --no-callbacks  # server never calls notify_url
    PYTHONPATH=. python tests/independent/measure.py --no-notify     # client asks for no callbacks

The CLI is run with ``--notify-url local`` unless ``--no-notify``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recuro_server import ServerConfig, mp4_bytes, restored_bytes, run_server

KEY = "measure-key"
SECRET = "measure-secret"


async def run(args: argparse.Namespace) -> dict[str, object]:
    scale = args.time_scale
    cfg = ServerConfig(
        api_key=KEY,
        api_secret=SECRET,
        time_scale=scale,
        latency=tuple(args.latency),
        upstream_fraction=args.upstream,
        seed=args.seed,
        analysis_base=10.0 * args.analysis_mult,
        analysis_per_mib=30.0 * args.analysis_mult,
        job_base=20.0 * args.job_mult,
        job_per_mib=50.0 * args.job_mult,
        variation=args.variation,
        callbacks=not args.no_callbacks,
        callback_drop=args.callback_drop,
        download_fault=args.download_fault,
    )
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="recuro-measure-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        inputs = []
        for i in range(args.n):
            p = folder / f"reel{i:03d}.mp4"
            p.write_bytes(mp4_bytes(rng.randint(256 * 1024, 1792 * 1024), args.seed * 1000 + i))
            inputs.append(p)
        out = Path(tmp) / "out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECURO_")}
        env |= {"RECURO_API_KEY": KEY, "RECURO_API_SECRET": SECRET}
        cmd = [
            sys.executable, "-m", "orchestrator.cli.recuro", "restore", *map(str, inputs),
            "--format", "Mp4H264", "--filter", "Noise", "--out", str(out),
            "--time-scale", str(scale), "--report", str(Path(tmp) / "report.json"),
        ]  # fmt: skip
        if not args.no_notify:
            cmd += ["--notify-url", "local"]
        cmd += args.extra
        async with run_server(cfg) as srv:
            cmd += ["--base-url", srv.base_url]
            t0 = time.monotonic()
            proc = await anyio.run_process(cmd, env=env, check=False)
            wall = time.monotonic() - t0
            st = srv.state
            expected = {restored_bytes(p.read_bytes(), "Mp4H264", ["Noise"], "") for p in inputs}
            got = {
                f.read_bytes() for f in out.iterdir() if f.is_file() and not f.name.startswith(".")
            }
            media = list(st.all_media.values())
            bound = max(m.analysis_s + m.job_s for m in media) if media else float("nan")
            by_action = Counter(e.action for e in st.log)
            refused = Counter((e.action, e.error_code) for e in st.log if e.status != 200)
            start_ok = Counter(
                e.file_id for e in st.log if e.action == "StartJob" and e.status == 200
            )
            first_start = {}
            for e in st.log:
                if e.action == "StartJob" and e.status == 200:
                    first_start.setdefault(e.file_id, e.t)
            first_dl = {}
            for e in st.downloads:
                first_dl.setdefault(e.file_id, e.t)
            lag_start = [
                first_start[m.file_id] - m.analysis_done_at
                for m in media
                if m.file_id in first_start and m.analysis_done_at
            ]
            lag_dl = [
                first_dl[m.file_id] - m.job_done_at
                for m in media
                if m.file_id in first_dl and m.job_done_at
            ]
            n_up = max(1, by_action.get("UploadMedia", 0))
            events = sorted(
                [(e.entered, 1) for e in st.log + st.downloads if e.done is not None]
                + [(e.done, -1) for e in st.log + st.downloads if e.done is not None]
            )
            inflight = peak = 0
            for _t, d in events:
                inflight += d
                peak = max(peak, inflight)
            if args.dump_log:
                rows = [
                    {
                        "t": round(e.t, 3),
                        "entered": e.entered and round(e.entered, 3),
                        "done": e.done and round(e.done, 3),
                        "action": e.action,
                        "file_id": e.file_id,
                        "status": e.status,
                        "error_code": e.error_code,
                    }
                    for e in sorted(st.log + st.downloads, key=lambda e: e.t)
                ]
                marks = [
                    {
                        "file_id": m.file_id,
                        "size": m.size,
                        "analysis_done": m.analysis_done_at,
                        "job_done": m.job_done_at,
                    }
                    for m in media
                ]
                cbs = [
                    {
                        "t": round(t, 3),
                        "file_id": b.get("file_id"),
                        "code": b.get("error_code"),
                        "status": status,
                    }
                    for t, _url, b, status in st.callbacks_sent
                ]
                Path(args.dump_log).write_text(  # noqa: ASYNC240
                    json.dumps({"log": rows, "media": marks, "callbacks": cbs}, indent=0)
                )
            return {
                "exit": proc.returncode,
                "stderr_tail": proc.stderr.decode()[-1500:] if proc.returncode else "",
                "callbacks_server": "on" if cfg.callbacks else "off",
                "client_notify": not args.no_notify,
                "items": args.n,
                "outputs_ok": f"{len(expected & got)}/{len(expected)}",
                "requests_total": len(st.log),
                "requests_per_item": round(len(st.log) / args.n, 3),
                "requests_per_item_by_action": {
                    k: round(v / args.n, 3) for k, v in sorted(by_action.items())
                },
                "uploads": n_up,
                "downloads_http": len(st.downloads),
                "download_status": dict(Counter(e.status for e in st.downloads)),
                "wall_s": round(wall, 2),
                "bound_s": round(bound, 2),
                "wall_over_bound": round(wall / bound, 3),
                "refused": {f"{a}:{c}": v for (a, c), v in refused.items()},
                "startjob_refused": sum(v for (a, _c), v in refused.items() if a == "StartJob"),
                "startjob_accepted_per_file": dict(Counter(start_ok.values())),
                "max_requests_in_any_window": st.max_in_window(),
                "max_requests_in_flight": peak,
                "media_left": len(st.media),
                "callbacks_made": sum(1 for *_, status in st.callbacks_sent if status is not None),
                "callbacks_dropped": sum(1 for *_, status in st.callbacks_sent if status is None),
                "lag_analysis_done_to_startjob_s": _summary(lag_start),
                "lag_job_done_to_download_s": _summary(lag_dl),
            }


def _summary(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    xs = sorted(xs)
    return {
        "median": round(statistics.median(xs), 3),
        "p90": round(xs[int(0.9 * (len(xs) - 1))], 3),
        "max": round(xs[-1], 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=120)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-scale", type=float, default=0.1)
    p.add_argument("--no-callbacks", action="store_true", help="the server never calls notify_url")
    p.add_argument("--no-notify", action="store_true", help="run the CLI without --notify-url")
    p.add_argument("--analysis-mult", type=float, default=1.0, help="scale the analysis durations")
    p.add_argument("--job-mult", type=float, default=1.0, help="scale the job durations")
    p.add_argument(
        "--variation", type=float, default=0.3, help="seeded relative variation of durations"
    )
    p.add_argument(
        "--callback-drop",
        type=float,
        default=0.0,
        help="fraction of callbacks the server drops (seeded)",
    )
    p.add_argument(
        "--latency",
        type=float,
        nargs=2,
        default=(0.02, 0.4),
        metavar=("LO", "HI"),
        help="wall seconds",
    )
    p.add_argument(
        "--upstream",
        type=float,
        default=0.5,
        help="share of the latency before the request is counted",
    )
    p.add_argument(
        "--download-fault",
        help="download faults, comma-separated: truncate_once, ignore_range (see ServerConfig)",
    )
    p.add_argument(
        "--dump-log",
        metavar="FILE",
        help="write the server's request log and media timings as JSON",
    )
    p.add_argument("extra", nargs="*", help="more CLI arguments (after --)")
    args = p.parse_args()
    print(json.dumps(anyio.run(run, args), indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
