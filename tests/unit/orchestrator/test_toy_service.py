"""A third service added the way the README's "Add a service" says: one adapter class, no engine change.

`CopyService` is an in-memory service that takes the bytes (no URL to fetch), has no job to start, no account
listing and no callbacks: only the core protocol (upload, status, download, delete). It runs batches through
`open_batch`, the same engine, and the commands' shared stack (`drive`, the renderers, `exit_code`).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from orchestrator import (
    ItemError,
    JobSpec,
    Notifier,
    Phase,
    PollSettings,
    PushStager,
    RemoteStatus,
    RunnerConfig,
    ServiceAdapter,
    Starter,
    Sweeper,
    Uploaded,
    open_batch,
)
from orchestrator._service import Source
from orchestrator.cli._batchcmd import drive, exit_code
from orchestrator.cli._main import EXIT_FAILED, EXIT_OK, Voice
from orchestrator.cli._render import Wording


class CopyService:
    """Uppercases what it is given: an item is processing until its status was read once, then done."""

    name = "copy"

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.polled: set[str] = set()
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    def job_spec(self) -> JobSpec:
        return JobSpec("copy", {"transform": "upper"})

    def output_name(self, input_name: str) -> str:
        return input_name + ".upper"

    async def upload(self, source: Source, *, notify_url: str | None) -> Uploaded:
        self.calls.append("upload")
        if not isinstance(source, Path):
            raise ItemError("NotAFile", f"{source}: the copy service takes files only")
        data = await anyio.Path(source).read_bytes()
        if not data.isascii():
            raise ItemError("NotText", f"{source.name} is not ASCII text")
        remote_id = f"c{next(self._ids)}"
        self.stored[remote_id] = data
        return Uploaded(remote_id)

    async def status(self, remote_id: str) -> RemoteStatus:
        self.calls.append("status")
        await anyio.lowlevel.checkpoint()
        if remote_id not in self.stored:
            return RemoteStatus(Phase.GONE)
        if remote_id not in self.polled:
            self.polled.add(remote_id)
            return RemoteStatus(Phase.PROCESSING, fraction=0.5, state="copying")
        return RemoteStatus(Phase.RESTORED, state="done", result_url=f"copy://{remote_id}")

    async def download(
        self, url: str, dest: Path, *, progress: object, reissue_of: str | None = None
    ) -> Path:
        self.calls.append("download")
        await anyio.Path(dest).write_bytes(self.stored[url.removeprefix("copy://")].upper())
        return dest

    async def delete(self, remote_id: str) -> None:
        self.calls.append("delete")
        await anyio.lowlevel.checkpoint()
        self.stored.pop(remote_id, None)


def _config(out: Path) -> RunnerConfig:
    fast = PollSettings(min_interval=0.01, max_interval=0.05)
    return RunnerConfig(out_dir=out, poll=fast, backoff=0.01, backoff_cap=0.05)


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    files = []
    for name, text in (("a.txt", b"alpha"), ("b.txt", b"bravo"), ("c.txt", b"charlie")):
        path = tmp_path / name
        path.write_bytes(text)
        files.append(str(path))
    return files


def test_the_toy_is_a_core_adapter_without_capabilities():
    """It satisfies the core protocol and claims none of the optional capabilities."""
    service: ServiceAdapter = CopyService()
    assert not isinstance(service, Starter | Sweeper | Notifier)


async def test_a_toy_batch_runs_end_to_end_through_open_batch(tmp_path, inputs):
    """Every file is uploaded once, polled to done, downloaded transformed, and deleted from the service."""
    service = CopyService()
    out = tmp_path / "out"
    async with open_batch(service, out, stager=PushStager(), config=_config(out)) as batch:
        events = [event async for event in batch.run(inputs)]
    report = batch.report()
    assert report.totals == {"done": 3, "failed": 0, "parked": 0, "pending": 0}
    assert (out / "a.txt.upper").read_bytes() == b"ALPHA"
    assert (out / "c.txt.upper").read_bytes() == b"CHARLIE"
    assert service.calls.count("upload") == 3
    assert service.stored == {}  # the journal recorded the uploads as the batch's own: all deleted
    assert type(events[-1]).__name__ == "BatchDone"

    async with open_batch(service, out, stager=PushStager(), config=_config(out)) as again:
        [event async for event in again.run(inputs)]
    assert service.calls.count("upload") == 3, "a rerun finds every item done in the journal"
    assert again.report().totals["done"] == 3


async def test_a_toy_batch_runs_through_the_commands_shared_stack(tmp_path, inputs, capsys):
    """The shared driver shows the batch, and a service-side refusal fails only its item (exit 1)."""
    (tmp_path / "bad.txt").write_bytes("ÿ non-ascii".encode())
    service = CopyService()
    out = tmp_path / "out"
    wording = Wording(overall="all copies", title="copy summary", rate=None, tabs=True)
    ended = await drive(
        open_batch(service, out, stager=PushStager(), config=_config(out)),
        [*inputs, str(tmp_path / "bad.txt")],
        wording=wording,
        tty=False,
        voice=Voice("copy"),
        watch_signals=False,
    )
    assert exit_code(ended, Voice("copy")) == EXIT_FAILED
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    done = {line[0] for line in lines if line[1] == "done"}
    assert done == set(inputs)
    assert [str(tmp_path / "bad.txt"), "failed", "NotText", "bad.txt is not ASCII text"] in lines
    assert ended.report.totals == {"done": 3, "failed": 1, "parked": 0, "pending": 0}
    capsys.readouterr()
    clean = await drive(
        open_batch(service, tmp_path / "clean", stager=PushStager(), config=_config(out)),
        inputs,
        wording=wording,
        tty=False,
        voice=Voice("copy"),
        watch_signals=False,
    )
    assert exit_code(clean, Voice("copy")) == EXIT_OK


async def test_callbacks_for_a_service_without_them_are_refused_before_the_journal(tmp_path):
    """`notify=` for a service that is no `Notifier` is a `ValueError` naming it; no journal is made."""
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="copy service sends no callbacks"):
        async with open_batch(CopyService(), out, stager=PushStager(), notify="local"):
            pass
    assert not out.exists()


class DescribedCopyService(CopyService):
    """The toy with the optional `Describer` capability: its output stands for two files."""

    async def describe(self, output: Path) -> list[str]:
        return [f"{output}#1", f"{output}#2"]


async def test_the_describer_hook_names_what_an_output_stands_for(tmp_path, inputs, capsys):
    """A `Describer` adapter's parts of a finished output reach the renderer (a toy without it: the file)."""
    wording = Wording(overall="all copies", title="copy summary", rate=None, tabs=True)
    for service, out in (
        (DescribedCopyService(), tmp_path / "two"),
        (CopyService(), tmp_path / "one"),
    ):
        await drive(
            open_batch(service, out, stager=PushStager(), config=_config(out)),
            inputs[:1],
            wording=wording,
            tty=False,
            voice=Voice("copy"),
            watch_signals=False,
        )
    done = [
        line.split("\t")[3:] for line in capsys.readouterr().out.splitlines() if "\tdone\t" in line
    ]
    output = tmp_path / "two" / "a.txt.upper"
    assert done == [[f"{output}#1", f"{output}#2"], [str(tmp_path / "one" / "a.txt.upper")]]


def test_a_config_scaled_scales_every_duration_once():
    """`RunnerConfig.scaled(x)` multiplies every duration (poll, settle, backoffs, timeouts) and no count."""
    config = RunnerConfig(
        out_dir=Path("out"),
        poll=PollSettings(min_interval=2.0, max_interval=60.0, reconcile_interval=300.0),
        settle=30.0,
        backoff=1.0,
        backoff_cap=30.0,
        phase_timeout=100.0,
        callback_wait=1800.0,
        max_active=7,
    )
    scaled = config.scaled(0.5)
    assert (scaled.poll.min_interval, scaled.poll.max_interval) == (1.0, 30.0)
    assert scaled.poll.reconcile_interval == 150.0
    assert (scaled.settle, scaled.backoff, scaled.backoff_cap) == (15.0, 0.5, 15.0)
    assert (scaled.phase_timeout, scaled.callback_wait) == (50.0, 900.0)
    assert (scaled.max_active, scaled.step_retries, scaled.poll.margin) == (7, 5, 0.1)
    assert scaled.fetch_hold == config.fetch_hold  # our own latency, not the service's clock
    assert RunnerConfig(out_dir=Path("out")).scaled(2.0).phase_timeout is None
