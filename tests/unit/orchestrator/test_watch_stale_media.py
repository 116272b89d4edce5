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
