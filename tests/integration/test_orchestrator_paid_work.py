"""Never destroy paid work (issue 11): an expiring link, our own failures and a full disk keep the result.

Remote media is deleted only after its output is verified on disk, or after the service itself failed the
job. A failure on our side leaves the item resumable.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys

import anyio
from test_orchestrator_recuro import emulator, expected, parse, restore, started_jobs

from orchestrator.cli._restore import run_restore
from recuro_async.testing import ALTERNATE_ERROR_CODES, make_samples


async def test_an_expired_link_mid_download_resumes_from_a_fresh_one(
    tmp_path, canary_key, canary_secret
):
    """Signed links expire before a cut download resumes: the item ends done with one job, resumed from
    the bytes on disk (the server counts at most 1 MiB sent twice), and its media deleted after that."""
    originals = make_samples(tmp_path / "in", 2)
    big = tmp_path / "in" / "big.mov"
    big.write_bytes(originals[0].read_bytes() + bytes(3 * 1024 * 1024))
    async with (
        emulator(
            canary_secret,
            canary_key,
            restored_url_ttl=20.0,
            truncate_rate=1.0,
            bandwidth=2_000_000,
            seed=3,
        ) as running
    ):  # a link lives 0.4 s at the suite's time scale; every download is cut, and resumes
        code = await restore(running, [*map(str, originals), str(big)], tmp_path / "out")
        entries = running.emulator.log
        left = running.emulator.media_ids()
        big_id = next(
            e.file_id
            for e in entries
            if e.action == "download"
            and e.status in (200, 206)
            and e.file_id is not None
            and running.emulator.restored_bytes_sent(e.file_id) > 3 * 1024 * 1024
        )
        sent = running.emulator.restored_bytes_sent(big_id)
    assert code == 0
    out = tmp_path / "out" / "big.mp4"
    assert out.read_bytes() == expected(big)
    assert max(started_jobs(running).values()) == 1
    # (a refused link is logged without its file_id: the emulator refuses it before looking it up)
    statuses = collections.Counter(e.status for e in entries if e.action == "download")
    assert statuses[403] >= 1, f"the link never expired mid-download: {statuses}"
    assert statuses[206] >= 1, "the download did not resume"
    assert sent - out.stat().st_size <= 1024 * 1024, "more than 1 MiB fetched again"
    assert left == []


async def test_a_batch_against_other_error_codes_ends_done_with_one_job_each(
    tmp_path, canary_key, canary_secret
):
    """The document names no refusal codes: a server answering premature and second StartJobs (and an
    unknown id) with codes of its own still gets 50 of 50 done, one job per file, nothing left.

    One original fetched at a time, so that analysis times drift from what sizes predict. Whether a
    StartJob is refused here depends on timing (speculation is earned); the refusal path itself is
    shown deterministically in tests/unit/orchestrator/test_speculation.py."""
    originals = make_samples(tmp_path / "in", 50)
    async with emulator(
        canary_secret, canary_key, error_codes=ALTERNATE_ERROR_CODES, max_concurrent_fetches=1
    ) as running:
        code = await restore(running, [*map(str, originals)], tmp_path / "out")
        left = running.emulator.media_ids()
        jobs = started_jobs(running)
    assert code == 0
    for original in originals:
        assert (tmp_path / "out" / f"{original.stem}.mp4").read_bytes() == expected(original)
    assert len(jobs) == 50
    assert set(jobs.values()) == {1}
    assert left == []


async def test_a_second_run_on_the_same_journal_exits_2_before_any_request(
    tmp_path, canary_key, canary_secret
):
    """While one `recuro restore` holds the journal, the same command beside it stops at once, exit 2,
    naming the holder's PID, and the service sees no request from it."""
    originals = make_samples(tmp_path / "in", 2)
    out = tmp_path / "out"
    async with emulator(canary_secret, canary_key) as running:
        holder = """
import sys, anyio
from orchestrator._journal import Journal
from orchestrator.cli._restore import add_restore_arguments, _setup
import argparse
async def main():
    parser = argparse.ArgumentParser(); add_restore_arguments(parser)
    args = parser.parse_args(sys.argv[1:])
    setup = await _setup(args, None)
    async with setup.client, Journal(setup.journal, setup.adapter.job_spec()):
        print("held", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
anyio.run(main)
"""
        argv = [
            *map(str, originals),
            "--format",
            "Mp4H264",
            "--out",
            str(out),
            "--base-url",
            running.base_url,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECURO_BASE")}
        async with await anyio.open_process(
            [sys.executable, "-c", holder, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        ) as first:
            assert first.stdout is not None
            assert (await first.stdout.receive()).startswith(b"held")
            before = len(running.emulator.log)
            second = await anyio.run_process(
                [sys.executable, "-m", "orchestrator.cli._restore", *argv], env=env, check=False
            )
            assert len(running.emulator.log) == before, "the second run sent requests"
            first.kill()
    assert second.returncode == 2
    assert f"PID {first.pid}".encode() in second.stderr


async def test_refused_credentials_stop_the_batch_at_the_first_call(
    tmp_path, canary_key, canary_secret, capsys
):
    """A wrong key: exit 2 after one refused request, no item failed; with the right key the same
    command (no --retry-failed) restores everything."""
    originals = make_samples(tmp_path / "in", 3)
    out = tmp_path / "out"
    async with emulator("another-secret", canary_key) as running:
        code = await restore(running, [*map(str, originals)], out)
        refused = list(running.emulator.log)
    assert code == 2
    assert len(refused) == 1
    err = capsys.readouterr().err
    assert "refused the credentials" in err
    assert "RECURO_API_SECRET" in err
    async with emulator(canary_secret, canary_key) as running:
        code = await restore(running, [*map(str, originals)], out)
    assert code == 0
    assert all((out / f"{o.stem}.mp4").exists() for o in originals)


async def test_an_unreachable_host_stops_the_batch_naming_it(tmp_path, capsys):
    """Nothing listens at the base URL: exit 2 naming the host, before any item moves."""
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    originals = make_samples(tmp_path / "in", 2)
    argv = [
        *map(str, originals),
        "--format",
        "Mp4H264",
        "--out",
        str(tmp_path / "out"),
        "--base-url",
        f"http://127.0.0.1:{port}/api/1.0/",
        "--time-scale",
        "0.01",
    ]
    with anyio.fail_after(60):
        code = await run_restore(parse(argv), tty=False)
    assert code == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err
    assert "cannot reach" in err


async def test_a_journal_that_cannot_be_created_is_a_clear_error_with_exit_2(
    tmp_path, canary_key, canary_secret, capsys
):
    """A --journal that cannot be created (its directory is a file) stops before any request, exit 2."""
    originals = make_samples(tmp_path / "in", 1)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    async with emulator(canary_secret, canary_key) as running:
        code = await restore(
            running, [str(originals[0])], tmp_path / "out", "--journal", str(blocker / "j.sqlite")
        )
        sent = list(running.emulator.log)
    assert code == 2
    assert sent == []
    assert str(blocker) in capsys.readouterr().err


async def test_restore_downloads_in_segments_when_asked(tmp_path, canary_key, canary_secret):
    """`--segments 4`: a large restored file comes in several concurrent ranges, byte-identical."""
    originals = make_samples(tmp_path / "in", 1)
    big = tmp_path / "in" / "long.mov"
    big.write_bytes(originals[0].read_bytes() + bytes(17 * 1024 * 1024))
    async with emulator(canary_secret, canary_key) as running:
        code = await restore(running, [str(big)], tmp_path / "out", "--segments", "4")
        ranges = [e for e in running.emulator.log if e.action == "download" and e.status == 206]
    assert code == 0
    assert (tmp_path / "out" / "long.mp4").read_bytes() == expected(big)
    assert len(ranges) >= 3, f"{len(ranges)} ranges: the download was not segmented"


async def test_a_server_that_fetches_before_answering_gets_one_upload_at_a_time(
    tmp_path, canary_key, canary_secret, caplog
):
    """A server that fetches the original before it answers UploadMedia (the document is silent): the
    first held fetch times out and is served, the batch learns the dialect once, and every item ends
    done with one job, nothing left (issue 14: the upload seal on another reading of the document)."""
    originals = make_samples(tmp_path / "in", 12)
    async with emulator(canary_secret, canary_key, fetch_timing="before-answer") as running:
        with caplog.at_level("INFO", logger="orchestrator"):
            code = await restore(running, [*map(str, originals)], tmp_path / "out")
        left = running.emulator.media_ids()
        jobs = started_jobs(running)
    assert code == 0
    for original in originals:
        assert (tmp_path / "out" / f"{original.stem}.mp4").read_bytes() == expected(original)
    assert set(jobs.values()) == {1}
    assert len(jobs) == 12
    assert left == []
    learned = [r.getMessage() for r in caplog.records if "before it answers" in r.getMessage()]
    assert len(learned) == 1, learned
    assert not [
        r for r in caplog.records if "answers UploadMedia before fetching" in r.getMessage()
    ]
