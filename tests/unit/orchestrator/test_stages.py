"""The stage table: allowed moves, terminal and intent stages."""

from __future__ import annotations

import itertools

import pytest

from orchestrator._stages import (
    INTENT_STAGES,
    TERMINAL_STAGES,
    TRANSITIONS,
    IllegalTransitionError,
    Item,
    Stage,
    check_transition,
)

HAPPY_PATH = [
    Stage.QUEUED,
    Stage.STAGED,
    Stage.UPLOADING,
    Stage.UPLOADED,
    Stage.READY,
    Stage.STARTING,
    Stage.RUNNING,
    Stage.RESTORED,
    Stage.DOWNLOADING,
    Stage.DOWNLOADED,
    Stage.DONE,
]


def test_happy_path_is_allowed():
    """Every step of the Recuro flow is in the table."""
    for old, new in itertools.pairwise(HAPPY_PATH):
        check_transition(old, new)


def test_every_stage_has_a_row():
    """The table names every stage, and only stages."""
    assert set(TRANSITIONS) == set(Stage)
    for targets in TRANSITIONS.values():
        assert targets <= set(Stage)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Stage.QUEUED, Stage.UPLOADING),  # no upload without staging
        (Stage.QUEUED, Stage.UPLOADED),  # no result without staging and an intent (or a precheck)
        (Stage.READY, Stage.RUNNING),  # no job without an intent
        (Stage.UPLOADING, Stage.DONE),
        (Stage.PARKED, Stage.QUEUED),  # parked waits for a person
        (Stage.DONE, Stage.FAILED),
    ],
)
def test_illegal_moves_raise(old, new):
    """Moves outside the table raise IllegalTransitionError."""
    with pytest.raises(IllegalTransitionError, match=f"{old.value} -> {new.value}"):
        check_transition(old, new)


def test_intents_lead_only_to_answers_or_reconciliation():
    """An intent stage resolves to the call's result, back to its start, failure or parking."""
    assert TRANSITIONS[Stage.UPLOADING] == {
        Stage.UPLOADED,
        Stage.STAGED,
        Stage.FAILED,
        Stage.PARKED,
    }
    assert Stage.READY in TRANSITIONS[Stage.STARTING]
    assert {Stage.UPLOADING, Stage.STARTING} == INTENT_STAGES


def test_terminal_stages():
    """Done, failed and parked end an item; only done and failed can be requeued."""
    assert {Stage.DONE, Stage.FAILED, Stage.PARKED} == TERMINAL_STAGES
    assert TRANSITIONS[Stage.PARKED] == frozenset()


def test_item_knows_local_inputs_and_owned_media():
    """URLs are not staged; media is owned until deleted."""
    item = Item(key="k", seq=0, input="HTTPS://example.org/a.mov", output_path="o")
    assert not item.is_local
    assert not item.owns_remote
    item.remote_id = "f1"
    assert item.owns_remote
    item.remote_deleted = True
    assert not item.owns_remote
    assert Item(key="k", seq=0, input="relative/a.mov", output_path="o").is_local
