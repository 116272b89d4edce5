"""The CLI's views of the event stream: plain lines, rich bars, and the summary table."""

from __future__ import annotations

import io

from orchestrator._events import (
    BatchDone,
    DownloadProgress,
    ItemDone,
    ItemFailed,
    ItemProgress,
    ItemQueued,
    StageChanged,
)
from orchestrator._report import build_report, redact_url
from orchestrator._stages import Item, Stage
from orchestrator.cli._render import PlainRenderer, RichRenderer, display_name, print_summary
from orchestrator.cli._restore import WORDING

KEY = "/data/in/reel one.mov"


def _events():
    return [
        ItemQueued(key=KEY, input="reel one.mov", stage=Stage.QUEUED),
        ItemQueued(key="/data/in/b.mov", input="b.mov", stage=Stage.RUNNING),
        StageChanged(key=KEY, old=Stage.QUEUED, new=Stage.STAGED),
        StageChanged(key=KEY, old=Stage.UPLOADED, new=Stage.RUNNING),
        ItemProgress(key=KEY, state="JobRunning", progress=40.0),
        DownloadProgress(key=KEY, done=10, total=100),
        DownloadProgress(key=KEY, done=20, total=100),
        DownloadProgress(key=KEY, done=60, total=100),
        ItemDone(key=KEY, output_path="/out/reel one.mp4", size=100, sha256="ab"),
        ItemFailed(key="/data/in/b.mov", error_code="JobFailed", error_message="the job failed"),
        BatchDone(done=1, failed=1, parked=0, pending=0),
    ]


def test_plain_lines_name_each_transition():
    """One line per transition, downloads in quarters, failures with their code, then the totals."""
    stream = io.StringIO()
    with PlainRenderer(stream, wording=WORDING) as renderer:
        for event in _events():
            renderer.handle(event)
    assert stream.getvalue().splitlines() == [
        "b.mov: resumed at restoring",
        "reel one.mov: staged",
        "reel one.mov: restoring",
        "reel one.mov: downloaded 10 of 100 bytes",
        "reel one.mov: downloaded 60 of 100 bytes",
        "done reel one.mov -> /out/reel one.mp4 (100 bytes)",
        "FAILED b.mov: JobFailed: the job failed",
        "batch finished: 1 done, 1 failed, 0 parked, 0 pending",
    ]


def test_rich_bars_follow_the_batch():
    """The overall bar counts finished items; per-item bars come and go with the items."""
    from rich.console import Console

    renderer = RichRenderer(Console(file=io.StringIO(), force_terminal=True, width=100))
    with renderer:
        for event in _events()[:5]:
            renderer.handle(event)
        assert len(renderer._rows) == 2  # the resumed item in flight has its bar too
        for event in _events()[5:]:
            renderer.handle(event)
    overall = renderer._progress.tasks[0]
    assert (overall.completed, overall.total) == (2, 2)
    assert renderer._rows == {}


def _rendered(renderer) -> str:
    return "\n".join(
        f"{task.description} {task.fields.get('detail', '')}"
        for task in renderer._progress.tasks
        if task.visible
    )


def test_every_item_in_flight_is_shown_or_counted():
    """Past the bars a terminal can show, the rest in flight are counted by stage; none is hidden."""
    from rich.console import Console

    renderer = RichRenderer(
        Console(file=io.StringIO(), force_terminal=True, width=120), wording=WORDING
    )
    with renderer:
        for n in range(20):
            renderer.handle(ItemQueued(key=f"/in/{n}.mov", input=f"{n}.mov", stage=Stage.QUEUED))
        for n in range(20):
            stage = Stage.UPLOADED if n % 2 else Stage.RUNNING
            renderer.handle(StageChanged(key=f"/in/{n}.mov", old=Stage.QUEUED, new=stage))
        text = _rendered(renderer)
        assert len(renderer._rows) == 12
        assert "and 8 more: 4 analysing, 4 restoring" in text
        renderer.handle(ItemDone(key="/in/0.mov", output_path="/out/0.mp4", size=1, sha256=""))
        assert "and 7 more" in _rendered(renderer), "a freed bar goes to an item that had none"
        assert len(renderer._rows) == 12


def test_transfers_show_bytes_and_the_batch_an_eta():
    """A download bar shows bytes, a job bar percent, and the overall bar an ETA."""
    from rich.console import Console

    renderer = RichRenderer(Console(file=io.StringIO(), force_terminal=True, width=120), rate=1.0)
    with renderer:
        for n in range(3):
            renderer.handle(ItemQueued(key=f"/in/{n}.mov", input=f"{n}.mov", stage=Stage.QUEUED))
        renderer.handle(StageChanged(key="/in/0.mov", old=Stage.RESTORED, new=Stage.DOWNLOADING))
        renderer.handle(
            DownloadProgress(key="/in/0.mov", done=3 * 1024 * 1024, total=8 * 1024 * 1024)
        )
        renderer.handle(StageChanged(key="/in/1.mov", old=Stage.READY, new=Stage.RUNNING))
        renderer.handle(ItemProgress(key="/in/1.mov", state="JobRunning", progress=42.0))
        text = _rendered(renderer)
    assert "3.0 MiB / 8.0 MiB" in text
    assert "42%" in text
    assert "0/3  ETA 0m09s" in text  # 3 items x 3.3 requests at 1 request/s


def _items() -> list[Item]:
    done = Item(
        key="/in/a.mov", seq=0, input="/in/a.mov", output_path="/out/a.mp4", stage=Stage.DONE
    )
    done.output_size, done.sha256, done.remote_id = 2048, "cafe", "f-1"
    done.timings = {"queued": 10.0, "done": 12.5}
    failed = Item(
        key="https://u:pw@example.org/b.mov",
        seq=1,
        input="https://u:pw@example.org/b.mov",
        output_path="/out/b.mp4",
        stage=Stage.FAILED,
        error_code="JobFailed",
        error_message="the job failed",
    )
    return [done, failed]


def test_report_json_and_summary():
    """The report counts outcomes, masks URL credentials, and the summary lists every item."""
    report = build_report(_items(), service="recuro", settings={"output_format": "Mp4H264"})
    assert report.totals == {"done": 1, "failed": 1, "parked": 0, "pending": 0}
    text = report.to_json()
    assert "pw" not in text
    assert '"input": "https://***@example.org/b.mov"' in text
    assert report.items[0].seconds == 2.5
    assert [i.input for i in report.failed] == ["https://***@example.org/b.mov"]
    plain = io.StringIO()
    print_summary(report, tty=False, stream=plain)
    lines = plain.getvalue().splitlines()
    assert lines[0] == "a.mov\tdone\ta.mp4\t2.0 KiB\t"
    assert lines[1].endswith("JobFailed: the job failed")
    assert lines[-1] == "summary: 1 done, 1 failed, 0 parked, 0 pending"
    table = io.StringIO()
    print_summary(report, tty=True, stream=table, title=WORDING.title)
    assert "restore summary" in table.getvalue()


def test_names_and_redaction():
    """Items show by file name; URLs lose only their credentials."""
    assert display_name("https://example.org/x/clip.mov?sig=1") == "clip.mov"
    assert display_name("/a/b/c.mkv") == "c.mkv"
    assert redact_url("https://user:secret@host:8443/p") == "https://***@host:8443/p"
    assert redact_url("https://host/p") == "https://host/p"
    assert redact_url("/local/path@x") == "/local/path@x"


def test_tab_lines_tell_a_resumable_stop_from_a_failure():
    """A stop on our side (the item is resumable) is `stopped`, never `failed`, in the lines scripts read;
    a failure and a park keep their words."""
    from orchestrator.cli._render import TabRenderer

    stream = io.StringIO()
    items = {
        name: Item(key=name, seq=n, input=name, output_path="o", stage=Stage.DOWNLOADING)
        for n, name in enumerate(("a.gif", "b.gif", "c.gif"))
    }
    with TabRenderer(stream) as renderer:
        renderer.handle(
            ItemFailed(key="a.gif", error_code="NetworkError", error_message="x", resumable=True),
            items["a.gif"],
        )
        renderer.handle(ItemFailed(key="b.gif", error_code="E", error_message="y"), items["b.gif"])
        renderer.handle(
            ItemFailed(key="c.gif", error_code="P", error_message="z", parked=True), items["c.gif"]
        )
    assert stream.getvalue().splitlines() == [
        "a.gif\tstopped\tNetworkError\tx",
        "b.gif\tfailed\tE\ty",
        "c.gif\tparked\tP\tz",
    ]
