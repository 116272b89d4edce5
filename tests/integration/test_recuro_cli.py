"""The `recuro` command's one-call subcommands, run as a real process against the emulator on loopback."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from recuro_async import Filter, OutputFormat, RecuroClient, State
from recuro_async.testing import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    EmulatorConfig,
    RunningEmulator,
    expected_restored_bytes,
    run_emulator,
    serve_asgi,
)

TIME_SCALE = 0.01


def emulator():
    """The emulator on loopback (a context manager per test: its task group cannot span fixture phases)."""
    return run_emulator(EmulatorConfig(time_scale=TIME_SCALE))


async def recuro(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run `recuro ARGS` as its own process, without blocking the event loop."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECURO_")} | env
    return await anyio.run_process(
        [sys.executable, "-m", "orchestrator.cli.recuro", *args], env=full_env, check=False
    )


def env_for(running: RunningEmulator) -> dict[str, str]:
    return {
        "RECURO_BASE_URL": running.base_url,
        "RECURO_API_KEY": DEMO_API_KEY,
        "RECURO_API_SECRET": DEMO_API_SECRET,
    }


async def test_filters_formats_and_ls():
    """filters, formats and ls print the service's lists as tab-separated lines and exit 0."""
    async with emulator() as running:
        env = env_for(running)
        filters = await recuro("filters", env=env)
        formats = await recuro("formats", env=env)
        listing = await recuro("ls", env=env)
        assert (filters.returncode, formats.returncode, listing.returncode) == (0, 0, 0)
        assert {line.split("\t")[0] for line in filters.stdout.decode().splitlines()} == {
            f.value for f in Filter
        }
        assert {line.split("\t")[0] for line in formats.stdout.decode().splitlines()} == {
            f.value for f in OutputFormat
        }
        assert listing.stdout == b""


async def test_progress_download_and_rm_of_a_restored_file(tmp_path):
    """progress shows the state, download writes the restored bytes, rm deletes the media."""
    async with emulator() as running:
        original = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + bytes(range(256)) * 100

        async def media(scope, receive, send):
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(original)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": original})

        async with anyio.create_task_group() as tg:
            origin = await tg.start(serve_asgi, media)
            async with RecuroClient(
                DEMO_API_KEY, DEMO_API_SECRET, base_url=running.base_url
            ) as client:
                file_id = await client.upload_media(f"{origin}/reel.mov")
                await client.wait_for(
                    file_id, State.MEDIA_COMPLETED, poll_interval=0.01, timeout=30
                )
                await client.start_job(file_id, output_format="Mp4H264", filters=["Noise"])
                done = await client.wait_for(
                    file_id, State.JOB_COMPLETED, poll_interval=0.01, timeout=30
                )
            tg.cancel_scope.cancel()
        env = env_for(running)
        progress = await recuro("progress", file_id, env=env)
        assert progress.returncode == 0
        assert progress.stdout.decode().split("\t")[:2] == ["JobCompleted", "100"]
        download = await recuro("download", done.restored_file_url, "--out", str(tmp_path), env=env)
        assert download.returncode == 0, download.stderr
        path = download.stdout.decode().strip()
        assert await anyio.Path(path).read_bytes() == expected_restored_bytes(
            original, output_format="Mp4H264", filters=["Noise"], output_scaling=None
        )
        # issue 12: `--out newdl/` is a directory, made if missing, never a file named `newdl`
        into_new = await recuro(
            "download", done.restored_file_url, "--out", f"{tmp_path / 'newdl'}/", env=env
        )
        assert into_new.returncode == 0, into_new.stderr
        assert (tmp_path / "newdl").is_dir()
        assert into_new.stdout.decode().strip() == str(tmp_path / "newdl" / Path(path).name)
        # an existing file is never replaced silently
        again = await recuro("download", done.restored_file_url, "--out", str(tmp_path), env=env)
        assert again.returncode == 1
        assert b"--overwrite" in again.stderr
        replaced = await recuro(
            "download", done.restored_file_url, "--out", str(tmp_path), "--overwrite", env=env
        )
        assert replaced.returncode == 0, replaced.stderr
        assert (await recuro("rm", file_id, env=env)).returncode == 0
        missing = await recuro("rm", file_id, env=env)
        assert missing.returncode == 1
        assert b"MediaNotFound" in missing.stderr


async def test_missing_credentials_exit_2_naming_the_variables():
    """Without credentials the command exits 2 and says which variables to set."""
    async with emulator() as running:
        result = await recuro("ls", env={"RECURO_BASE_URL": running.base_url})
        assert result.returncode == 2
        assert b"RECURO_API_KEY" in result.stderr


async def test_insecure_public_base_url_exits_2(canary_secret):
    """An http:// base URL to a public host is a configuration error; the secret is never echoed."""
    result = await recuro(
        "ls",
        env={
            "RECURO_BASE_URL": "http://www.recuromedia.com/api/1.0/",
            "RECURO_API_KEY": "k",
            "RECURO_API_SECRET": canary_secret,
        },
    )
    assert result.returncode == 2
    assert b"https" in result.stderr
    assert canary_secret.encode() not in result.stdout + result.stderr


async def test_api_secret_file_and_wrong_secret(tmp_path, canary_secret):
    """--api-secret-file is read; a wrong secret fails with exit 1 and is never printed."""
    async with emulator() as running:
        secret_file = tmp_path / "secret"
        secret_file.write_text(canary_secret + "\n")
        result = await recuro(
            "ls",
            "--base-url",
            running.base_url,
            "--api-key",
            DEMO_API_KEY,
            "--api-secret-file",
            str(secret_file),
            env={},
        )
        assert result.returncode == 1
        assert b"AuthorizationInvalid" in result.stderr
        assert canary_secret.encode() not in result.stdout + result.stderr


async def test_emulator_command_prints_three_sourceable_lines_then_serves():
    """`recuro emulator` prints RECURO_BASE_URL, _API_KEY and _API_SECRET, then serves until SIGINT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECURO_")}
    async with await anyio.open_process(
        [
            sys.executable,
            "-m",
            "orchestrator.cli.recuro",
            "emulator",
            "--port",
            "0",
            "--time-scale",
            "0.01",
        ],
        env=env,
    ) as process:
        assert process.stdout is not None
        lines: list[str] = []
        buffer = b""
        with anyio.fail_after(30):
            while len(lines) < 3:
                buffer += await process.stdout.receive()
                *done, rest = buffer.split(b"\n")
                lines += [line.decode() for line in done]
                buffer = rest
        assert all(line.startswith("export ") for line in lines[:3])
        served = dict(shlex.split(line)[1].split("=", 1) for line in lines[:3])
        assert list(served) == ["RECURO_BASE_URL", "RECURO_API_KEY", "RECURO_API_SECRET"]
        listing = await recuro("ls", env=served)
        assert listing.returncode == 0, listing.stderr
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await process.wait() == 130  # Ctrl-C, as in every command
