"""News about media an item let go of never reaches it (found by the random kills: an item uploaded again
after a failed ingest was failed by a late "gone" about its old media)."""

from __future__ import annotations

from typing import Any, cast

from _clientkit._clock import SystemClock
from orchestrator._polling import PollPlanner, PollSettings
from orchestrator._service import Phase, RemoteStatus
from orchestrator._stages import Item, Stage
from orchestrator._watch import Watcher


def test_news_about_media_the_item_let_go_of_is_dropped():
    """After the item moved to new media, a callback about the old one is not delivered; the new one is."""
    watcher = Watcher(
        cast("Any", object()),
        cast("Any", object()),
        PollPlanner(PollSettings()),
        SystemClock(),
        phase_timeout=None,
    )
    item = Item(key="k", seq=0, input="k", output_path="o", stage=Stage.UPLOADED, remote_id="old")
    watcher.watch(item)
    item.remote_id = "new"  # the failed media went to the trash; the input was uploaded again
    watcher.bind(item, "new")
    watcher.notify("old", RemoteStatus(Phase.GONE, error_code="MediaNotFound"))
    assert watcher._mail["k"].status is None
    watcher.notify("new", RemoteStatus(Phase.READY))
    status = watcher._mail["k"].status
    assert status is not None
    assert status.phase is Phase.READY


def test_callbacks_teach_the_planner_which_phases_they_report():
    """News from a callback is marked as such: once callbacks report most of a phase's ends, the planner
    stops polling that phase at its predictions (a probe's answer does not count)."""
    planner = PollPlanner(PollSettings(min_interval=1.0, max_interval=30.0))
    watcher = Watcher(
        cast("Any", object()), cast("Any", object()), planner, SystemClock(), phase_timeout=None
    )
    for n in range(4):
        item = Item(
            key=f"k{n}",
            seq=n,
            input=f"k{n}",
            output_path="o",
            stage=Stage.UPLOADED,
            remote_id=f"m{n}",
        )
        watcher.watch(item)
        planner.track(item.key, Phase.PROCESSING, 0.0)
    watcher.deliver("k0", RemoteStatus(Phase.READY))  # a probe's answer
    watcher.notify("m1", RemoteStatus(Phase.READY))  # the service called back
    watcher.notify("m1", RemoteStatus(Phase.READY))  # (no longer waiting: not counted)
    watcher.notify("m2", RemoteStatus(Phase.PROCESSING))  # progress ends nothing
    watcher.notify("m2", RemoteStatus(Phase.READY))
    assert not planner._reported(Phase.PROCESSING)  # two of three
    watcher.notify("m3", RemoteStatus(Phase.READY))
    assert planner._reported(Phase.PROCESSING)  # three of four
