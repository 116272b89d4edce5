"""The project's `recuro restore` CLI, run as a black box against an independently written server.

The server (``recuro_server.py`` beside this file) was written from the API document alone, not from
the project's client, emulator or engine; see its docstring for every reading of a vague point. These
tests check only what a user of the CLI and the service can see: the exit code, the files written,
and the server's own request log (one accepted StartJob per file, nothing left on the account, never
more than the rate limit's requests in any sliding window counted at arrival).
"""

from __future__ import annotations

import os
import random
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from recuro_server import RunningServer, ServerConfig, mp4_bytes, restored_bytes, run_server

KEY = "indep-key-Q4"
SECRET = "indep-secret-w9Zt"


def make_inputs(folder: Path, sizes: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        p = folder / f"reel{i:03d}.mp4"
        p.write_bytes(mp4_bytes(size, i))
        paths.append(p)
    return paths


async def restore(
    srv: RunningServer, inputs: list[Path], out: Path, time_scale: float, *extra: str
) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECURO_")}
    env |= {"RECURO_API_KEY": KEY, "RECURO_API_SECRET": SECRET}
    cmd = [
        sys.executable, "-m", "orchestrator.cli.recuro", "restore",
        *map(str, inputs),
        "--format", "Mp4H264", "--filter", "Noise", "--out", str(out),
        "--base-url", srv.base_url, "--time-scale", str(time_scale), *extra,
    ]  # fmt: skip
    with anyio.fail_after(90):
        proc = await anyio.run_process(cmd, env=env, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def check_run(
    srv: RunningServer,
    inputs: list[Path],
    out: Path,
    rc: int,
    err: str,
    *,
    premature_ok: bool = False,
) -> None:
    state = srv.state
    assert rc == 0, f"exit {rc}\nstderr:\n{err[-3000:]}"
    # every output present, with the bytes the server restored (matched by content, not by name)
    expected = {restored_bytes(p.read_bytes(), "Mp4H264", ["Noise"], "") for p in inputs}
    written = [f for f in out.iterdir() if f.is_file() and not f.name.startswith(".")]
    got = {f.read_bytes() for f in written}
    assert expected <= got, (
        f"missing outputs: {len(expected - got)} of {len(expected)}; files: {sorted(f.name for f in written)}"
    )
    # exactly one accepted StartJob per file, and no refused ones
    accepted = Counter(
        e.file_id for e in state.log if e.action.lower() == "startjob" and e.status == 200
    )
    assert len(accepted) == len(inputs)
    assert set(accepted.values()) == {1}, accepted
    refused = [e for e in state.log if e.status != 200]
    assert not [e for e in refused if e.error_code == "RateLimitExceeded"], refused
    premature = [e for e in refused if e.action.lower() == "startjob"]
    if premature_ok:  # a StartJob sent as a probe may meet MediaNotReady, nothing else
        assert {e.error_code for e in premature} <= {"MediaNotReady"}, premature
    else:
        assert not premature, premature
    # nothing left on the account
    assert state.media == {}, sorted(state.media)
    # never more than the limit in any sliding window counted at arrival (all authenticated API requests)
    assert state.max_in_window() <= state.config.rate_limit


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["notify-url-local", "no-notify-flag"])
async def test_restore_batch(tmp_path: Path, mode: str) -> None:
    scale = 0.02
    cfg = ServerConfig(
        api_key=KEY, api_secret=SECRET, time_scale=scale, latency=(0.005, 0.06), seed=7,
    )  # fmt: skip
    sizes = [random.Random(i).randint(8 * 1024, 600 * 1024) for i in range(8)]
    inputs = make_inputs(tmp_path / "in", sizes)
    out = tmp_path / "out"
    extra = ("--notify-url", "local") if mode == "notify-url-local" else ()
    async with run_server(cfg) as srv:
        rc, _out, err = await restore(srv, inputs, out, scale, *extra)
        check_run(srv, inputs, out, rc, err)
        if mode == "notify-url-local":
            assert srv.state.callbacks_sent, "no callback was made"
            assert all(status == 200 for *_, status in srv.state.callbacks_sent), (
                srv.state.callbacks_sent
            )


@pytest.mark.slow
async def test_restore_tight_rate_limit(tmp_path: Path) -> None:
    """A limit of 15 per window on both sides, with latency jitter: the limiter is the bottleneck."""
    scale = 0.02
    cfg = ServerConfig(
        api_key=KEY, api_secret=SECRET, time_scale=scale, latency=(0.005, 0.12), seed=11,
        rate_limit=15, analysis_base=10, job_base=10,
    )  # fmt: skip
    inputs = make_inputs(tmp_path / "in", [64 * 1024 + 512 * i for i in range(12)])
    out = tmp_path / "out"
    async with run_server(cfg) as srv:
        rc, _out, err = await restore(srv, inputs, out, scale, "--rate-limit", "15")
        check_run(srv, inputs, out, rc, err)


@pytest.mark.slow
async def test_restore_when_callbacks_never_arrive(tmp_path: Path) -> None:
    """The CLI asks for callbacks, the server never makes them: polling must still finish the batch."""
    scale = 0.02
    cfg = ServerConfig(
        api_key=KEY, api_secret=SECRET, time_scale=scale, latency=(0.005, 0.06), seed=5,
        callbacks=False, variation=0.6,
    )  # fmt: skip
    inputs = make_inputs(
        tmp_path / "in", [random.Random(i).randint(8 * 1024, 900 * 1024) for i in range(8)]
    )
    out = tmp_path / "out"
    async with run_server(cfg) as srv:
        rc, _out, err = await restore(srv, inputs, out, scale, "--notify-url", "local")
        check_run(srv, inputs, out, rc, err, premature_ok=True)
        assert not srv.state.callbacks_sent


@pytest.mark.slow
async def test_restore_survives_truncated_downloads(tmp_path: Path) -> None:
    """Each file's first download drops mid-body and the server ignores Range: outputs must still be exact."""
    scale = 0.02
    cfg = ServerConfig(
        api_key=KEY, api_secret=SECRET, time_scale=scale, latency=(0.005, 0.06), seed=9,
        download_fault="truncate_once,ignore_range",
    )  # fmt: skip
    inputs = make_inputs(tmp_path / "in", [200 * 1024 + 4096 * i for i in range(5)])
    out = tmp_path / "out"
    async with run_server(cfg) as srv:
        rc, _out, err = await restore(srv, inputs, out, scale, "--notify-url", "local")
        check_run(srv, inputs, out, rc, err)
        assert len(srv.state.truncated) == len(inputs)
