"""The `mediacrush` command run as a real process against the MediaCrush emulator on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from mediacrush_async import MediaCrushClient, content_hash
from mediacrush_async.testing import (
    EmulatorConfig,
    RunningEmulator,
    expected_derived_bytes,
    run_emulator,
    sample_media,
)
from orchestrator._adapters.mediacrush import read_manifest
from orchestrator.cli.mediacrush import build_parser, run_upload

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.01
OTHER_ADDRESS = "10.9.8.7"


def emulator():
    """The emulator on loopback (a context manager per test: its task group cannot span fixture phases)."""
    return run_emulator(EmulatorConfig(time_scale=TIME_SCALE))


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli.mediacrush", *args]


def environment(base_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIACRUSH_")}
    if base_url is not None:
        env["MEDIACRUSH_BASE_URL"] = base_url
    return env


async def mediacrush(*args: str, base_url: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `mediacrush ARGS` as its own process, without blocking the event loop."""
    return await anyio.run_process(command(*args), env=environment(base_url), cwd=REPO, check=False)


def lines(result: subprocess.CompletedProcess[bytes]) -> list[list[str]]:
    return [line.split("\t") for line in result.stdout.decode().splitlines()]


def write(directory: Path, name: str, kind: str, size: int = 20_000, seed: int = 1) -> Path:
    path = directory / name
    path.write_bytes(sample_media(kind, size=size, seed=seed))
    return path


async def uploaded(running: RunningEmulator, data: bytes, name: str, *, other: bool = False) -> str:
    """Upload `data` from the test itself (from OTHER_ADDRESS if asked) and wait until it is done."""
    headers = {"X-Real-IP": OTHER_ADDRESS} if other else {}
    async with (
        httpx.AsyncClient(headers=headers) as http,
        MediaCrushClient(running.base_url, http_client=http) as client,
    ):
        result = await client.upload_file(data, filename=name)
    with anyio.fail_after(10):
        assert await running.emulator.wait_for_status(result.hash) == "done"
    return result.hash


def check_derived(source: Path, out: Path) -> list[str]:
    """Check the manifest of `source` in `out` and every file it lists; the names, in order."""
    data = source.read_bytes()
    manifest = read_manifest(out / f"{source.name}.mediacrush.json")
    assert manifest.hash == content_hash(data)
    roles = {f.role for f in manifest.files}
    assert roles == ({"file", "extra"} if source.suffix == ".gif" else {"file"})
    for derived in manifest.files:
        assert derived.path == str(out / derived.name)
        expected = expected_derived_bytes(data, derived.name, original_ext=source.suffix[1:])
        assert Path(derived.path).read_bytes() == expected, derived.name
    return [f.name for f in manifest.files]


async def test_upload_downloads_every_derived_file(tmp_path):
    """upload --out writes every file and extra of each upload, byte-equal to the emulator's transform."""
    sources = [write(tmp_path, "cat.gif", "gif"), write(tmp_path, "song.mp3", "mp3", seed=2)]
    out = tmp_path / "out"
    async with emulator() as running:
        result = await mediacrush(
            "upload", *map(str, sources), "--out", str(out), "--time-scale", str(TIME_SCALE),
            base_url=running.base_url,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    done = {row[0]: row for row in lines(result) if row[1] == "done"}
    names = set()
    for source in sources:
        listed = check_derived(source, out)
        assert done[str(source)][2] == content_hash(source.read_bytes())
        assert done[str(source)][3:] == [str(out / name) for name in listed]
        names.update(listed)
    on_disk = {
        p.name for p in out.iterdir() if not p.name.endswith((".json", ".sqlite", "-wal", "-shm"))
    }
    assert on_disk == names


async def test_upload_reports_a_failed_processing_and_exits_1(tmp_path):
    """A file the server cannot process is reported failed with its status while the others finish; exit 1."""
    media = write(tmp_path, "cat.gif", "gif")
    text = write(tmp_path, "notes.txt", "text")
    async with emulator() as running:
        result = await mediacrush(
            "upload", str(media), str(text), "--out", str(tmp_path / "out"),
            "--time-scale", str(TIME_SCALE), base_url=running.base_url,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    finals = {row[0]: row[1:3] for row in lines(result) if row[1] in ("done", "failed")}
    assert finals == {
        str(media): ["done", content_hash(media.read_bytes())],
        str(text): ["failed", "unrecognised"],
    }
    assert b"1 done, 1 failed" in result.stderr


async def test_upload_without_out_only_uploads_and_waits(tmp_path):
    """Without --out the file is uploaded and processed, its URLs printed, and nothing downloaded."""
    source = write(tmp_path, "photo.png", "png")
    async with emulator() as running:
        result = await mediacrush(
            "upload", str(source), "--time-scale", str(TIME_SCALE), base_url=running.base_url
        )
        routes = [entry.route for entry in running.emulator.log]
    assert result.returncode == 0, result.stderr
    file_hash = content_hash(source.read_bytes())
    (done,) = [row for row in lines(result) if row[1] == "done"]
    assert done[:3] == [str(source), "done", file_hash]
    assert done[3] == f"{running.base_url}/{file_hash}.png"
    assert "POST /api/upload/file" in routes
    assert not [r for r in routes if r.startswith("GET /<file")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


async def test_upload_skips_bytes_the_server_already_has(tmp_path):
    """A file whose content hash the server knows is not sent again, and still downloads its files."""
    source = write(tmp_path, "cat.gif", "gif")
    async with emulator() as running:
        await uploaded(running, source.read_bytes(), "cat.gif")
        result = await mediacrush(
            "upload", str(source), "--out", str(tmp_path / "out"),
            "--time-scale", str(TIME_SCALE), base_url=running.base_url,
        )  # fmt: skip
        uploads = [e for e in running.emulator.log if e.route == "POST /api/upload/file"]
    assert result.returncode == 0, result.stderr
    assert len(uploads) == 1  # the test's own
    assert read_manifest(tmp_path / "out" / "cat.gif.mediacrush.json").files


async def test_ctrl_c_exits_130_and_the_same_command_resumes(tmp_path):
    """Ctrl-C during processing exits 130; the same command then finishes without uploading again."""
    source = write(tmp_path, "cat.gif", "gif")
    args = ["upload", str(source), "--out", str(tmp_path / "out"), "--time-scale", "0.02"]
    # processing takes about 1.8 s here, far longer than the interrupt needs
    async with run_emulator(EmulatorConfig(time_scale=0.2)) as running:
        env = environment(running.base_url)
        async with await anyio.open_process(command(*args), env=env, cwd=REPO) as process:
            assert process.stdout is not None
            seen = b""
            with anyio.fail_after(15):
                async for chunk in process.stdout:
                    seen += chunk
                    if b"\tuploaded\t" in seen:
                        break
                process.send_signal(signal.SIGINT)
                interrupted = await process.wait()
        resumed = await mediacrush(*args, base_url=running.base_url)
        sent = [e for e in running.emulator.log if e.route == "POST /api/upload/file"]
    assert interrupted == 130
    assert resumed.returncode == 0, resumed.stderr
    states = [row[1] for row in lines(resumed)]
    assert "uploading" not in states
    assert states[-1] == "done"
    assert len(sent) == 1
    check_derived(source, tmp_path / "out")


async def test_terminal_view_shows_bars_and_a_summary_table(tmp_path, capsys):
    """On a terminal the batch is shown with progress bars and ends with a summary table."""
    source = write(tmp_path, "cat.gif", "gif")
    async with emulator() as running:
        args = build_parser().parse_args(
            ["upload", str(source), "--out", str(tmp_path / "out"), "--base-url", running.base_url,
             "--time-scale", str(TIME_SCALE)]
        )  # fmt: skip
        code = await run_upload(args, tty=True, watch_signals=False)
    shown = capsys.readouterr().out
    assert code == 0
    assert "all files" in shown
    assert content_hash(source.read_bytes()) in shown
    assert "5 files" in shown


async def test_info_of_a_failed_file_names_its_status():
    """info of a file whose processing failed exits 1 naming the failure status."""
    async with emulator() as running:
        async with MediaCrushClient(running.base_url) as client:
            result = await client.upload_file(b"just some text, not media", filename="a.txt")
        with anyio.fail_after(10):
            assert await running.emulator.wait_for_status(result.hash) == "unrecognised"
        info = await mediacrush("info", result.hash, base_url=running.base_url)
    assert info.returncode == 1
    assert f"{result.hash}: processing failed (unrecognised)".encode() in info.stderr


async def test_info_prints_readable_lines_or_json():
    """info shows the object as field/value lines, or as JSON with --json."""
    data = sample_media("gif", size=20_000, seed=3)
    async with emulator() as running:
        file_hash = await uploaded(running, data, "anim.gif")
        plain = await mediacrush("info", file_hash, base_url=running.base_url)
        as_json = await mediacrush("info", file_hash, "--json", base_url=running.base_url)
    assert (plain.returncode, as_json.returncode) == (0, 0)
    rows = lines(plain)
    assert ["hash", file_hash] in rows
    assert ["blob_type", "video"] in rows
    assert ["flags", "autoplay=true loop=true mute=true nsfw=false"] in rows
    assert next(row[1] for row in rows if row[0] == "file") == f"{running.base_url}/{file_hash}.gif"
    assert [row[1] for row in rows if row[0] == "extra"] == [f"{running.base_url}/{file_hash}.jpg"]
    obj = json.loads(as_json.stdout)
    assert (obj["hash"], obj["blob_type"]) == (file_hash, "video")
    assert obj["files"][0]["file"] == f"/{file_hash}.gif"


async def test_status_of_several_hashes():
    """status prints one line per hash with its processing status, and exits 1 naming an unknown hash."""
    async with emulator() as running:
        first = await uploaded(running, sample_media("png", seed=4), "a.png")
        second = await uploaded(running, sample_media("mp3", seed=5), "b.mp3")
        known = await mediacrush("status", first, second, base_url=running.base_url)
        with_unknown = await mediacrush("status", first, "AAAAAAAAAAAA", base_url=running.base_url)
    assert known.returncode == 0, known.stderr
    assert lines(known) == [[first, "done", "image"], [second, "done", "audio"]]
    assert with_unknown.returncode == 1
    assert lines(with_unknown) == [[first, "done", "image"], ["AAAAAAAAAAAA", "not found", ""]]
    assert b"AAAAAAAAAAAA: no such file" in with_unknown.stderr


async def test_rm_deletes_a_file_of_this_address():
    """rm deletes a file uploaded from the same address and exits 0; the server no longer has it."""
    async with emulator() as running:
        file_hash = await uploaded(running, sample_media("png", seed=6), "a.png")
        result = await mediacrush("rm", file_hash, base_url=running.base_url)
        async with MediaCrushClient(running.base_url) as client:
            assert not await client.exists(file_hash)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"deleted {file_hash}\n"


async def test_rm_from_another_address_is_refused():
    """rm of a file uploaded from another address is refused with exit 1, and the file stays."""
    async with emulator() as running:
        file_hash = await uploaded(running, sample_media("png", seed=7), "a.png", other=True)
        result = await mediacrush("rm", file_hash, base_url=running.base_url)
        async with MediaCrushClient(running.base_url) as client:
            assert await client.exists(file_hash)
    assert result.returncode == 1
    assert b"only the address that uploaded it" in result.stderr
    assert result.stderr.startswith(b"mediacrush: error: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["upload", "{tmp}/missing.gif"], "{tmp}/missing.gif: no such file"),
        (["upload", "{tmp}/cat.gif", "{tmp}/missing.gif"], "{tmp}/missing.gif: no such file"),
        (["upload", "{tmp}"], "{tmp}: is a directory, not a regular file"),
        (["upload", "{tmp}/cat.gif", "--out", "{tmp}/cat.gif"], "'{tmp}/cat.gif': not a directory"),
        (["upload"], "the following arguments are required: FILE"),
        (["info", "not a hash"], "hash: must be a 12-character MediaCrush hash"),
        (["status", "AAAAAAAAAAAA", "short"], "hashes[1]: must be a 12-character MediaCrush hash"),
        (["rm", "../etc/passwd"], "hash: must be a 12-character MediaCrush hash"),
    ],
    ids=["missing", "one-missing", "directory", "out-not-dir", "empty", "info", "status", "rm"],
)
async def test_bad_input_exits_2_before_any_request(tmp_path, argv, message):
    """Bad input exits 2 with a message naming it, and the server sees no request at all."""
    write(tmp_path, "cat.gif", "gif")
    args = [a.format(tmp=tmp_path) for a in argv]
    async with emulator() as running:
        result = await mediacrush(*args, base_url=running.base_url)
        log = running.emulator.log
    assert result.returncode == 2
    assert message.format(tmp=tmp_path).encode() in result.stderr
    assert log == []


async def test_unreadable_file_exits_2_before_any_request(tmp_path):
    """A regular file that cannot be read exits 2 naming it, before any request."""
    if os.geteuid() == 0:
        # root reads any file whatever its mode; /proc/self/mem is a regular file whose first byte
        # cannot be read (EIO), in whichever process opens it.
        source = Path("/proc/self/mem")
    else:
        source = write(tmp_path, "cat.gif", "gif")
        source.chmod(0)
    async with emulator() as running:
        result = await mediacrush("upload", str(source), base_url=running.base_url)
        log = running.emulator.log
    assert result.returncode == 2
    assert f"{source}: cannot read the file".encode() in result.stderr
    assert log == []


async def test_demo_exits_0():
    """`mediacrush demo` verifies every derived file of its samples on the embedded emulator and exits 0."""
    result = await mediacrush("demo")
    assert result.returncode == 0, result.stderr
    assert b"8/8 media files verified" in result.stdout
    assert b"notes.txt failed as unrecognised, as expected" in result.stdout


async def test_journal_option_puts_the_journal_where_asked(tmp_path):
    """`upload --journal FILE` (the batch commands' shared option) keeps the journal there, and a rerun
    with it resumes: nothing is uploaded again."""
    source = write(tmp_path, "cat.gif", "gif")
    journal = tmp_path / "state" / "upload.sqlite"
    journal.parent.mkdir()
    argv = ["upload", str(source), "--out", str(tmp_path / "out"), "--journal", str(journal)]
    async with emulator() as running:
        base = ["--base-url", running.base_url, "--time-scale", str(TIME_SCALE)]
        args = build_parser().parse_args([*argv, *base])
        assert await run_upload(args, tty=False, watch_signals=False) == 0
        uploads = sum(1 for e in running.emulator.log if e.route == "POST /api/upload/file")
        assert await run_upload(args, tty=False, watch_signals=False) == 0
        again = sum(1 for e in running.emulator.log if e.route == "POST /api/upload/file")
    assert journal.is_file()
    assert not (tmp_path / "out" / ".mediacrush-journal.sqlite").exists()
    assert (uploads, again) == (1, 1)
