"""What a progress display or a summary shows, computed by the report (`Tally`, `Report.rows`), for the
commands and for embedders drawing their own."""

from __future__ import annotations

import pytest

from orchestrator._events import BatchDone, ItemDone, ItemFailed, ItemQueued, StageChanged
from orchestrator._report import (
    CALLS_PER_ITEM,
    Report,
    Tally,
    build_report,
    display_name,
    duration_text,
    size_text,
)
from orchestrator._stages import Item, Stage


def _queued(tally: Tally, n: int, stage: Stage = Stage.QUEUED) -> None:
    for i in range(n):
        tally.update(ItemQueued(key=f"k{i}", input=f"i{i}", stage=stage))


def test_the_tally_follows_items_from_queued_to_finished():
    """Queued items count in the total, moving ones are in flight, finished ones leave it."""
    tally = Tally()
    _queued(tally, 3)
    assert (tally.total, tally.finished, tally.in_flight()) == (3, 0, [])
    tally.update(StageChanged(key="k1", old=Stage.QUEUED, new=Stage.UPLOADING))
    tally.update(StageChanged(key="k0", old=Stage.QUEUED, new=Stage.RUNNING))
    assert tally.in_flight() == ["k0", "k1"]  # in the order they were queued
    tally.update(ItemDone(key="k0", output_path="/o", size=1, sha256=""))
    tally.update(ItemFailed(key="k1", error_code="X", error_message="x"))
    tally.update(BatchDone(done=1, failed=1, parked=0, pending=1))
    assert (tally.total, tally.finished, tally.in_flight()) == (3, 2, [])
    assert tally.stages == {"k2": Stage.QUEUED}


def test_a_resumed_item_in_flight_is_counted_at_once():
    """An item resumed mid-way (queued at RUNNING) is in flight from its first event."""
    tally = Tally()
    _queued(tally, 2, Stage.RUNNING)
    assert tally.in_flight() == ["k0", "k1"]


def test_the_eta_is_the_slower_of_the_pace_and_the_rate_budget():
    """Nothing finished: the budget bound alone (None without a rate); then the larger of the two."""
    tally = Tally()
    _queued(tally, 10)
    assert tally.eta(elapsed=5.0, rate=None) is None
    assert tally.eta(elapsed=5.0, rate=2.0) == pytest.approx(10 * CALLS_PER_ITEM / 2.0)
    for i in range(2):
        tally.update(ItemDone(key=f"k{i}", output_path="/o", size=1, sha256=""))
    assert tally.eta(elapsed=100.0, rate=2.0) == pytest.approx(8 * 100.0 / 2)  # the pace is slower
    assert tally.eta(elapsed=1.0, rate=2.0) == pytest.approx(8 * CALLS_PER_ITEM / 2.0)  # the budget
    assert tally.eta(elapsed=100.0, rate=None) == pytest.approx(400.0)
    for i in range(2, 10):
        tally.update(ItemDone(key=f"k{i}", output_path="/o", size=1, sha256=""))
    assert tally.eta(elapsed=1.0, rate=2.0) == 0.0


def test_the_progress_text_counts_finished_items_and_shows_the_eta_while_some_are_left():
    """`finished/total`, with the ETA only once there is one and items are left."""
    tally = Tally()
    _queued(tally, 3)
    assert tally.progress_text(elapsed=1.0, rate=None) == "0/3"
    assert tally.progress_text(elapsed=1.0, rate=1.0) == "0/3  ETA 0m09s"  # 3 x 3.3 requests at 1/s
    tally.update(ItemDone(key="k0", output_path="/o", size=1, sha256=""))
    assert tally.progress_text(elapsed=60.0, rate=None) == "1/3  ETA 2m00s"  # the pace: 60 s each
    for key in ("k1", "k2"):
        tally.update(ItemFailed(key=key, error_code="X", error_message="x"))
    assert tally.progress_text(elapsed=60.0, rate=1.0) == "3/3"


def _report(*, interrupted: bool = False) -> Report:
    done = Item(
        key="/in/a.mov", seq=0, input="/in/a.mov", output_path="/out/a.mp4", stage=Stage.DONE
    )
    done.output_size, done.sha256 = 3 * 1024 * 1024, "ab"
    failed = Item(
        key="https://u:pw@h/b.mov?sig=1",
        seq=1,
        input="https://u:pw@h/b.mov?sig=1",
        output_path="/out/b.mp4",
        stage=Stage.FAILED,
        error_code="JobFailed",
        error_message="the job failed",
    )
    pending = Item(key="/in/c.mov", seq=2, input="/in/c.mov", output_path="/out/c.mp4")
    pending.stage = Stage.RUNNING
    return build_report(
        [failed, pending, done], service="recuro", settings={}, interrupted=interrupted
    )


def test_the_summary_rows_and_totals():
    """One row per item in batch order: name, outcome, output file, size of done items, reason."""
    report = _report()
    assert report.rows() == [
        ("a.mov", "done", "a.mp4", "3.0 MiB", ""),
        ("b.mov", "failed", "", "", "JobFailed: the job failed"),
        ("c.mov", "pending", "", "", ""),
    ]
    assert report.totals_text() == "1 done, 1 failed, 0 parked, 1 pending"
    assert _report(interrupted=True).totals_text().endswith("1 pending (interrupted)")


def test_a_report_reads_back_from_its_json():
    """`Report.from_json(report.to_json())` is the same report (a `--report FILE` can be checked)."""
    report = _report(interrupted=True)
    assert Report.from_json(report.to_json()) == report


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, ""),
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**40, "3072.0 GiB"),
    ],
)
def test_sizes_read_in_binary_units(size, text):
    assert size_text(size) == text


def test_durations_and_names():
    """Minutes and seconds, hours and minutes past an hour; items by their file name."""
    assert duration_text(65.9) == "1m05s"
    assert duration_text(-3) == "0m00s"
    assert duration_text(7260) == "2h01m"
    assert display_name("https://u:pw@h/x/clip.mov?sig=1") == "clip.mov"
    assert display_name("https://u:pw@h/") == "***@h"  # no path: never the password
