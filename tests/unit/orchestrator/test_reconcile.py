"""Verdicts for unknown outcomes: adopt, repeat, or park; never guess."""

from __future__ import annotations

from orchestrator._reconcile import Verdict, judge_start, judge_uploads, upload_candidates
from orchestrator._service import Phase, RemoteMedia, RemoteStatus
from orchestrator._stages import Item


def _item(key: str) -> Item:
    return Item(key=key, seq=0, input=key, output_path="o")


def test_candidates_exclude_owned_and_known_media():
    """Media the journal owns or that was there before the batch is never a candidate."""
    media = [RemoteMedia("a", None), RemoteMedia("b", None), RemoteMedia("c", "u")]
    assert upload_candidates(media, owned={"a"}, ignore={"c"}) == ["b"]


def test_one_open_upload_and_one_candidate_is_adopted():
    """The usual crash: one unanswered upload, one unknown media."""
    (verdict,) = judge_uploads([_item("x")], ["f9"], fetched={"x": False}).values()
    assert verdict.verdict is Verdict.ADOPT
    assert verdict.remote_id == "f9"


def test_no_candidate_and_no_fetch_means_not_sent():
    """No new media and no fetch of the staged file: the upload never happened."""
    (verdict,) = judge_uploads([_item("x")], [], fetched={"x": False}).values()
    assert verdict.verdict is Verdict.NOT_SENT


def test_a_fetch_without_media_is_parked():
    """The service fetched the file but no media appeared: contradictory evidence, a person decides."""
    (verdict,) = judge_uploads([_item("x")], [], fetched={"x": True}).values()
    assert verdict.verdict is Verdict.PARKED
    assert "fetched" in verdict.reason


def test_ambiguous_uploads_are_parked():
    """More candidates than open uploads, or several of each, parks every item."""
    verdicts = judge_uploads([_item("x")], ["f1", "f2"], fetched={})
    assert verdicts["x"].verdict is Verdict.PARKED
    assert "f1, f2" in verdicts["x"].reason
    verdicts = judge_uploads([_item("x"), _item("y")], ["f1", "f2"], fetched={})
    assert {v.verdict for v in verdicts.values()} == {Verdict.PARKED}
    assert judge_uploads([], ["f1"], fetched={}) == {}


def test_start_is_judged_from_one_progress():
    """A job state proves the start, media ready or still processing proves none, the rest is parked."""
    assert judge_start(RemoteStatus(Phase.RUNNING)).verdict is Verdict.STARTED
    assert judge_start(RemoteStatus(Phase.RESTORED, result_url="u")).verdict is Verdict.STARTED
    assert judge_start(RemoteStatus(Phase.READY)).verdict is Verdict.NOT_SENT
    assert judge_start(RemoteStatus(Phase.PROCESSING)).verdict is Verdict.NOT_SENT
    assert judge_start(RemoteStatus(Phase.FAILED, error_code="E")).verdict is Verdict.FAILED
    assert judge_start(RemoteStatus(Phase.GONE)).verdict is Verdict.FAILED
    parked = judge_start(RemoteStatus(Phase.UNKNOWN, state="Mystery"))
    assert parked.verdict is Verdict.PARKED
    assert "Mystery" in parked.reason
