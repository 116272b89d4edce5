"""Shared measuring tools: sliding-window counts, per-process CPU/RSS, result tables.

Virtual time (`VirtualTimeLoop`, `run_virtual`, `LoopClock`) is shared with the tests: `_clientkit._virtualtime`.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import attrs

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
GIB = 1024 * MIB

# --------------------------------------------------------------------------------------- results


@attrs.define
class Target:
    """One SPEC 9 row: what was measured and whether it meets the target (None: not measured)."""

    figure: str
    target: str
    measured: str
    ok: bool | None
    note: str = ""


@attrs.define
class Table:
    """A titled table of figures."""

    title: str
    headers: list[str]
    rows: list[list[str]]


@attrs.define
class Section:
    """What one benchmark reports."""

    key: str
    title: str
    method: list[str] = attrs.Factory(list)
    tables: list[Table] = attrs.Factory(list)
    targets: list[Target] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)
    seconds: float = 0.0


@attrs.frozen
class Settings:
    """Options shared by every benchmark."""

    quick: bool
    work: Path
    seed: int = 20261125


def mark(ok: bool | None) -> str:
    """A pass/miss mark for the targets table."""
    return "not measured" if ok is None else ("PASS" if ok else "MISS")


def fmt(value: float, digits: int = 2) -> str:
    """A number with `digits` decimals, thousands separated."""
    return f"{value:,.{digits}f}"


def median(values: Sequence[float]) -> float:
    """The median (nan for no values)."""
    return statistics.median(values) if values else math.nan


# --------------------------------------------------------------------------------------- windows


def max_in_window(times: Sequence[float], window: float, resolution: float = 1e-6) -> int:
    """The most `times` inside any half-open window `[t, t + window)` (as a server counts "the last W s").

    Times are compared to `resolution` (a microsecond), so that two events exactly `window` apart on a
    virtual clock are not counted together because of float rounding.
    """
    ordered = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window + resolution:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# --------------------------------------------------------------------------------------- processes


@attrs.frozen
class ProcStats:
    """One finished child process: exit code, wall seconds, CPU seconds (user+sys), peak RSS, output."""

    returncode: int
    wall: float
    user: float
    system: float
    max_rss_mib: float
    stdout: str
    stderr: str

    @property
    def cpu(self) -> float:
        """User plus system CPU seconds."""
        return self.user + self.system


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """The peak resident set of a live process since its exec (`VmHWM` in /proc), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
) -> ProcStats:
    """Run `argv` to completion and measure that process alone.

    CPU comes from its own rusage (`os.wait4`). Peak RSS is sampled from /proc/PID/status `VmHWM`
    (a high-water mark) every 10 ms until it exits: `ru_maxrss` cannot be used, because Linux carries
    the *parent's* resident size into a child across fork + exec (every child would report at least
    this Python process's size).
    """
    started = time.perf_counter()
    with subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        out, err, hwm = _communicate(proc, timeout)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcStats(
        returncode=proc.returncode,
        wall=wall,
        user=usage.ru_utime,
        system=usage.ru_stime,
        max_rss_mib=hwm,
        stdout=out,
        stderr=err,
    )


def _communicate(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str, float]:
    """Read both pipes to EOF, sampling the peak RSS, without reaping the child (`wait4` does that)."""
    import threading

    chunks: dict[str, str] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    threads = [
        threading.Thread(target=drain, args=("out", proc.stdout), daemon=True),
        threading.Thread(target=drain, args=("err", proc.stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    hwm = 0.0
    while any(t.is_alive() for t in threads):
        sample = vm_hwm_mib(proc.pid)
        if sample is not None:
            hwm = max(hwm, sample)
        if time.monotonic() > deadline:
            proc.kill()
            break
        threads[0].join(0.01)
    for thread in threads:
        thread.join()
    return chunks.get("out", ""), chunks.get("err", ""), hwm


def python_env() -> dict[str, str]:
    """The environment for our Python children: the repository importable, no proxies, no bytecode noise."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def self_usage() -> tuple[float, float]:
    """This process's CPU seconds and peak RSS in MiB so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


# --------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        done = subprocess.run(
            [git, *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def curl_version() -> str:
    """curl's first version line, or 'not installed'."""
    curl = shutil.which("curl")
    if curl is None:
        return "not installed"
    done = subprocess.run([curl, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.stdout else "unknown"


def machine_info() -> list[tuple[str, str]]:
    """Rows describing the machine and the software measured."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    packages = ", ".join(
        f"{name} {_version(name)}"
        for name in (
            "httpx",
            "httpcore",
            "h11",
            "anyio",
            "aiolimiter",
            "uvicorn",
            "attrs",
            "cattrs",
        )
    )
    return [
        ("date (UTC)", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")),
        ("CPU", _cpu_model()),
        ("cores (os.cpu_count)", str(os.cpu_count())),
        ("RAM", _ram()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("packages", packages),
        ("curl", curl_version()),
        (
            "git commit",
            f"{_git('rev-parse', '--short', 'HEAD')}"
            + (" + uncommitted changes" if dirty not in ("", "unknown") else ""),
        ),
        ("load average at start (1/5/15 min)", " / ".join(f"{x:.2f}" for x in load)),
    ]


# --------------------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def render(
    sections: Sequence[Section],
    *,
    machine: Sequence[tuple[str, str]],
    command: str,
    quick: bool,
    load_end: str,
    total_seconds: float,
) -> str:
    """The whole RESULTS.md."""
    out: list[str] = ["# Benchmark results", ""]
    if quick:
        out += [
            "> **QUICK RUN** (`--quick`): small sizes for a smoke test. The figures below show that the",
            "> benchmarks work; they are not the measurements of record. Run `python3 -m benchmarks`",
            "> on an idle machine for those.",
            "",
        ]
    out += [
        (
            f"Command: `{command}` — {total_seconds:.0f} s in all. Every ratio below is measured side by side "
            "in the same run."
        ),
        "",
        "## Machine",
        "",
        md_table(["", ""], [*machine, ("load average at end (1/5/15 min)", load_end)]),
        "",
        "## Targets (SPEC section 9)",
        "",
    ]
    rows = [
        [s.key, t.figure, t.target, t.measured, mark(t.ok), t.note]
        for s in sections
        for t in s.targets
    ]
    out += [md_table(["", "figure", "target", "measured", "mark", "note"], rows), ""]
    for section in sections:
        out += [f"## {section.key} — {section.title}", "", f"Took {section.seconds:.0f} s.", ""]
        if section.method:
            out += ["**Method.**", ""]
            out += [f"- {line}" for line in section.method]
            out.append("")
        for table in section.tables:
            out += [f"**{table.title}**", "", md_table(table.headers, table.rows), ""]
        if section.notes:
            out += ["**Notes.**", ""]
            out += [f"- {line}" for line in section.notes]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------- emulator host


class EmulatorHost:
    """The parent's handle on a `benchmarks._emuhost` process: start it, send commands, stop it."""

    def __init__(self, spec: Mapping[str, Any], *, stderr_path: Path) -> None:
        import json

        self._json = json
        self._stderr = stderr_path.open("w")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._emuhost", json.dumps(spec)],
            cwd=ROOT,
            env=python_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.info: dict[str, Any] = self._read()

    @property
    def pid(self) -> int:
        """The host process's id."""
        return self._proc.pid

    def _read(self) -> dict[str, Any]:
        if self._proc.stdout is None:
            raise RuntimeError("the emulator host has no stdout pipe")
        line = self._proc.stdout.readline()
        if not line:
            self._stderr.flush()
            raise RuntimeError(
                f"the emulator host exited (code {self._proc.poll()}); see its stderr"
            )
        data: dict[str, Any] = self._json.loads(line)
        if "error" in data:
            raise RuntimeError(f"emulator host: {data['error']}")
        return data

    def call(self, cmd: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its answer."""
        if self._proc.stdin is None:
            raise RuntimeError("the emulator host has no stdin pipe")
        self._proc.stdin.write(self._json.dumps({"cmd": cmd, **params}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Ask the host to quit; kill it if it does not within 10 s."""
        if self._proc.poll() is None:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.write('{"cmd": "quit"}\n')
                    self._proc.stdin.close()
                self._proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
