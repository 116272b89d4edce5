"""B2's row against a common web server: ours with 8 segments vs `aria2c -x8 -s8`, from nginx capped per connection.

nginx names `Accept-Ranges` on 200 responses only (our emulator names it on 206s too), so this row shows
whether segments engage against a server as most are. Both tools run as fresh processes in paired rounds
(alternating order) against the same nginx; their output is verified (SHA-256 in the first round, 16
sampled blocks after) and deleted. Without nginx or aria2c the row says so instead of failing B2.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks._measure import (
    GIB,
    MIB,
    ROOT,
    ProcStats,
    Table,
    Target,
    fmt,
    median,
    python_env,
    run_measured,
)
from benchmarks._nginx import Nginx, nginx_binary

__all__ = ["nginx_rows"]

_LABEL = {
    "file x8": "ours: download_file, DownloadOptions(segments=8)",
    "aria2c": "aria2c -x8 -s8",
}


def _mib_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


def _aria2c_argv(binary: str, url: str, dest: Path) -> list[str]:
    """`aria2c -x8 -s8 URL` into `dest`, quiet, defaults otherwise (20 MiB minimum split, prealloc)."""
    return [
        binary,
        "-x8",
        "-s8",
        "-d",
        str(dest),
        "--allow-overwrite=true",
        "--auto-file-renaming=false",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--download-result=hide",
        url,
    ]


def _check_copy(path: Path, original: Path, digest: str | None, rng: random.Random) -> None:
    """Raise unless `path` is a copy of `original`: size, then the SHA-256 (`digest`) or 16 sampled blocks."""
    size = original.stat().st_size
    if path.stat().st_size != size:
        raise AssertionError(f"{path.name}: {path.stat().st_size} bytes, expected {size}")
    if digest is not None:
        if _sha256(path) != digest:
            raise AssertionError(f"{path.name}: wrong content (sha256)")
        return
    with path.open("rb") as got, original.open("rb") as src:
        for _ in range(16):
            at = rng.randrange(0, max(1, size - 65536))
            src.seek(at)
            got.seek(at)
            if got.read(65536) != src.read(65536):
                raise AssertionError(f"{path.name}: wrong bytes at {at}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def nginx_rows(work: Path, original: Path, *, cap: int, rounds: int) -> tuple[Table | None, Target]:
    """Ours with 8 segments vs `aria2c -x8 -s8`, from nginx capped per connection, paired rounds."""
    figure = (
        "download throughput, nginx with a per-connection cap, segments=8, vs aria2c -x8 -s8 (B2)"
    )
    nginx, aria2c = nginx_binary(), shutil.which("aria2c")
    missing = [name for name, found in (("nginx", nginx), ("aria2c", aria2c)) if found is None]
    if nginx is None or aria2c is None:
        why = f"not run: {' and '.join(missing)} not installed (Debian: apt-get install nginx-light aria2)"
        return None, Target(figure, ">= 1.0", why, None, "")
    load_before = os.getloadavg()[0]
    digest = _sha256(original)
    rng = random.Random(2)
    runs: dict[str, list[tuple[ProcStats, float, int, int]]] = {"file x8": [], "aria2c": []}
    with Nginx(nginx, original.parent, work / "nginx", rate=cap) as server:
        url = f"{server.url}/{original.name}"
        for r in range(rounds):
            order = ("file x8", "aria2c") if r % 2 == 0 else ("aria2c", "file x8")
            for tool in order:
                dest = work / f"nginx-{r}-{tool.split()[0]}"
                dest.mkdir()
                try:
                    if tool == "aria2c":
                        proc = run_measured(_aria2c_argv(aria2c, url, dest), cwd=dest)
                        transfer = proc.wall
                    else:
                        argv = [sys.executable, "-m", "benchmarks._dl_runner", "file", url]
                        argv += [f"{dest}/", "--segments", "8"]
                        proc = run_measured(argv, cwd=ROOT, env=python_env())
                        data = json.loads(proc.stdout.splitlines()[-1]) if proc.stdout else {}
                        transfer = float(data.get("transfer_wall", proc.wall))
                    if proc.returncode != 0:
                        raise RuntimeError(
                            f"{tool} exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
                        )
                    files = [
                        p for p in dest.iterdir() if p.is_file() and not p.name.startswith(".")
                    ]
                    if len(files) != 1:
                        raise AssertionError(f"{tool}: expected one file in {dest}, found {files}")
                    _check_copy(files[0], original, digest if r == 0 else None, rng)
                finally:
                    shutil.rmtree(dest, ignore_errors=True)
                responses, sent = server.counts()
                runs[tool].append((proc, transfer, responses, sent))
    size = original.stat().st_size
    rows = [
        [
            _LABEL[tool],
            fmt(_mib_s(size, median([p.wall for p, _, _, _ in rs])), 1),
            fmt(_mib_s(size, median([t for _, t, _, _ in rs])), 1) if tool != "aria2c" else "-",
            fmt(median([p.cpu for p, _, _, _ in rs]) / (size / GIB), 2),
            str(max(n for _, _, n, _ in rs)),
            f"{max(b for _, _, _, b in rs):,}",
            fmt(max(p.max_rss_mib for p, _, _, _ in rs), 1),
        ]
        for tool, rs in runs.items()
    ]
    pairs = list(zip(runs["file x8"], runs["aria2c"], strict=True))
    ratios = [a[0].wall / o[0].wall for o, a in pairs]
    whole = median(ratios)
    transfer = median([a[0].wall / o[1] for o, a in pairs])
    table = Table(
        f"nginx {_version_of(nginx)} on loopback, `limit_rate {cap // MIB}m` per connection, "
        f"{size / MIB:,.0f} MiB ({len(pairs)} paired rounds; throughput ours / aria2c's: {whole:.2f} "
        f"whole process (rounds {min(ratios):.2f}-{max(ratios):.2f}), {transfer:.2f} with our transfer "
        f"time only; 1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)",
        [
            "tool",
            "MiB/s, whole process",
            "MiB/s, transfer only",
            "CPU s/GiB, whole process",
            "responses (nginx-counted)",
            "body bytes served",
            "peak RSS MiB",
        ],
        rows,
    )
    target = Target(
        figure,
        ">= 1.0",
        f"{whole:.2f} whole process ({transfer:.2f} our transfer only)",
        whole >= 1.0,
        f"median of per-round ratios; nginx sends Accept-Ranges on 200s only, so the 206 is the proof; "
        f"cap {cap / MIB:g} MiB/s per connection",
    )
    return table, target


def _version_of(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "-v"], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    text = (out.stderr or out.stdout).strip()
    return text.rsplit("/", 1)[-1] if "/" in text else text
