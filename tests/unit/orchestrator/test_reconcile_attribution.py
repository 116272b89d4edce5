"""`judge_uploads` with callbacks: what an upload's own callback named, what must wait, what is parked."""

from __future__ import annotations

from orchestrator._reconcile import Verdict, judge_uploads
from orchestrator._stages import Item


def _item(key: str) -> Item:
    return Item(key=key, seq=0, input=key, output_path="o")


def test_a_callback_names_the_media_of_its_own_upload():
    """Each attributed item adopts the media its callback named, whatever else is on the account."""
    a, b = _item("a"), _item("b")
    verdicts = judge_uploads([a, b], ["m1", "m2"], fetched={}, attributed={"a": "m2", "b": "m1"})
    assert {k: (v.verdict, v.remote_id) for k, v in verdicts.items()} == {
        "a": (Verdict.ADOPT, "m2"),
        "b": (Verdict.ADOPT, "m1"),
    }


def test_the_last_unattributed_upload_takes_the_last_candidate():
    """Two open, one attributed: the other one and the one candidate left are each other's."""
    a, b = _item("a"), _item("b")
    verdicts = judge_uploads([a, b], ["m1", "m2"], fetched={}, attributed={"a": "m1"})
    assert (verdicts["b"].verdict, verdicts["b"].remote_id) == (Verdict.ADOPT, "m2")


def test_one_candidate_is_not_adopted_while_another_upload_is_open():
    """The candidate may be the other upload's, whose answer has not landed yet: wait, never guess."""
    verdicts = judge_uploads([_item("a")], ["m1"], fetched={}, open_elsewhere=True)
    assert verdicts["a"].verdict is Verdict.WAIT


def test_ambiguity_waits_for_callbacks_and_is_parked_without_them():
    """Several open, several candidates: wait while callbacks can still come, else park."""
    items = [_item("a"), _item("b")]
    waiting = judge_uploads(items, ["m1", "m2"], fetched={}, callbacks_expected=True)
    parked = judge_uploads(items, ["m1", "m2"], fetched={}, callbacks_expected=False)
    assert {v.verdict for v in waiting.values()} == {Verdict.WAIT}
    assert {v.verdict for v in parked.values()} == {Verdict.PARKED}


def test_no_candidate_means_not_sent_even_with_other_uploads_open():
    """An upload that made nothing is not sent, whatever the others do."""
    verdicts = judge_uploads([_item("a")], [], fetched={"a": False}, open_elsewhere=True)
    assert verdicts["a"].verdict is Verdict.NOT_SENT
