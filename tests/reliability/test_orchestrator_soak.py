"""Fault soak (SPEC 8): 200 items through `recuro restore` while the emulator misbehaves on purpose.

10 % of API requests answer 500, 5 % of responses are cut off after the action took effect, 5 % of
downloads are truncated and 2 % of jobs fail. Every item must end done, or failed with the injected job
failure as its reason; every output is byte-identical; no file_id gets two jobs; nothing is left on the
account; and the rate limit is never exceeded.
"""

from __future__ import annotations

import argparse
import collections
import json
import os

import pytest

from orchestrator.cli._restore import add_restore_arguments, run_restore
from recuro_async.testing import EmulatorConfig, expected_restored_bytes, make_samples, run_emulator

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

TIME_SCALE = 0.02
ITEMS = int(os.environ.get("SOAK_ITEMS", "200"))


async def test_fault_soak(tmp_path, canary_key, canary_secret, capsys):
    """Under 500s, dropped answers, truncated downloads and failing jobs, every item ends correctly."""
    samples = make_samples(tmp_path / "in", ITEMS, 1)
    out, report = tmp_path / "out", tmp_path / "report.json"
    config = EmulatorConfig(
        credentials={canary_key: canary_secret},
        time_scale=TIME_SCALE,
        seed=5,
        fault_rate=0.10,
        drop_rate=0.05,
        truncate_rate=0.05,
        job_failure_rate=0.02,
    )
    parser = argparse.ArgumentParser()
    add_restore_arguments(parser)
    async with run_emulator(config) as running:
        args = parser.parse_args(
            [
                *map(str, samples),
                "--format",
                "Mp4H264",
                "--out",
                str(out),
                "--report",
                str(report),
                "--base-url",
                running.base_url,
                "--time-scale",
                str(TIME_SCALE),
            ]
        )
        code = await run_restore(args, tty=False)
        log = running.emulator.log
        faults = collections.Counter(f.kind for f in running.emulator.faults)
        failed_jobs = {f.file_id for f in running.emulator.faults if f.kind == "job_failure"}
        peak = running.emulator.peak_window_count()
        left = running.emulator.media_ids()
    capsys.readouterr()
    assert min(faults["error500"], faults["drop"], faults["truncate"]) > 0, faults
    data = json.loads(report.read_text())
    outcomes = collections.Counter((i["outcome"], i["error_code"]) for i in data["items"])
    assert set(outcomes) <= {("done", None), ("failed", "JobFailed")}, outcomes
    failed_ids = {i["remote_id"] for i in data["items"] if i["outcome"] == "failed"}
    assert failed_ids == failed_jobs
    assert code == (1 if failed_ids else 0)
    for original in samples:
        item = next(i for i in data["items"] if i["input"] == str(original))
        if item["outcome"] == "done":
            assert (out / (original.stem + ".mp4")).read_bytes() == expected_restored_bytes(
                original.read_bytes(), output_format="Mp4H264", filters=[], output_scaling=None
            ), original.name
    jobs = collections.Counter(e.file_id for e in log if e.action == "StartJob" and e.status == 200)
    assert max(jobs.values()) == 1
    assert left == []
    assert peak <= 200
