"""What `mediacrush` says matches what it does (issue 12, item 9), against the emulator on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio

from mediacrush_async import MediaCrushClient, content_hash
from mediacrush_async.testing import EmulatorConfig, run_emulator, sample_media
from orchestrator.cli.mediacrush import build_parser, run_upload

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.01


def _upload_args(*argv: str):
    return build_parser().parse_args(["upload", *argv, "--time-scale", str(TIME_SCALE)])


def _write(directory: Path, name: str, kind: str, seed: int = 1) -> Path:
    path = directory / name
    path.write_bytes(sample_media(kind, size=20_000, seed=seed))
    return path


def _states(text: str) -> list[str]:
    return [line.split("\t")[1] for line in text.splitlines() if "\t" in line]


async def test_without_out_nothing_is_said_to_download(tmp_path, capsys):
    """Without --out nothing is downloaded, so no line says `downloading`."""
    source = _write(tmp_path, "photo.png", "png")
    async with run_emulator(EmulatorConfig(time_scale=TIME_SCALE)) as running:
        args = _upload_args(str(source), "--base-url", running.base_url)
        code = await run_upload(args, tty=False, watch_signals=False)
    assert code == 0
    states = _states(capsys.readouterr().out)
    assert "downloading" not in states
    assert states[-1] == "done"


async def test_with_out_the_download_is_said(tmp_path, capsys):
    """With --out the download step is shown as before."""
    source = _write(tmp_path, "photo.png", "png")
    async with run_emulator(EmulatorConfig(time_scale=TIME_SCALE)) as running:
        args = _upload_args(
            str(source), "--base-url", running.base_url, "--out", str(tmp_path / "out")
        )
        code = await run_upload(args, tty=False, watch_signals=False)
    assert code == 0
    states = _states(capsys.readouterr().out)
    assert states.index("uploading") < states.index("downloading") < states.index("done")


async def test_a_skipped_upload_is_not_said_to_upload(tmp_path, capsys):
    """A file the content-hash check found on the server is `already uploaded`, never `uploading`."""
    source = _write(tmp_path, "cat.gif", "gif")
    async with run_emulator(EmulatorConfig(time_scale=TIME_SCALE)) as running:
        async with MediaCrushClient(running.base_url) as client:
            await client.upload_file(source)
        args = _upload_args(str(source), "--base-url", running.base_url)
        code = await run_upload(args, tty=False, watch_signals=False)
    assert code == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    states = [line[1] for line in lines]
    assert "uploading" not in states
    assert [str(source), "already uploaded", content_hash(source)] in lines


def test_the_terminal_view_does_not_say_processing_twice():
    """The bar's state shows the server's state once (`processing`), not `processing: processing`."""
    import io

    from rich.console import Console

    from orchestrator._events import ItemProgress, ItemQueued, StageChanged
    from orchestrator._stages import Stage
    from orchestrator.cli._render import RichRenderer
    from orchestrator.cli.mediacrush import wording

    key = "/data/cat.gif"
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    renderer = RichRenderer(console, wording=wording(downloads=True))
    renderer.handle(ItemQueued(key=key, input="cat.gif", stage=Stage.QUEUED))
    renderer.handle(StageChanged(key=key, old=Stage.UPLOADING, new=Stage.UPLOADED))
    renderer.handle(ItemProgress(key=key, state="processing", progress=0.0))
    (task,) = [t for t in renderer._progress.tasks if t.description.startswith("cat.gif")]
    shown = f"{task.description} {task.fields['detail']}"
    assert shown.split().count("processing") == 1, shown


async def test_info_of_an_unknown_hash_names_the_hash():
    """`mediacrush info HASH` of an unknown hash exits 1 and names the hash it looked for."""
    async with run_emulator(EmulatorConfig(time_scale=TIME_SCALE)) as running:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIACRUSH_")}
        env["MEDIACRUSH_BASE_URL"] = running.base_url
        result: subprocess.CompletedProcess[bytes] = await anyio.run_process(
            [sys.executable, "-m", "orchestrator.cli.mediacrush", "info", "AAAAAAAAAAAA"],
            env=env,
            cwd=REPO,
            check=False,
        )
    assert result.returncode == 1
    assert b"AAAAAAAAAAAA: no such file or album" in result.stderr
