"""The WHOLE stage transition table, every (old, new) pair, against a table written here (issue 17).

The table below is written from what `_stages`' docstring and SPEC 5 say an item may do, not copied from
`TRANSITIONS`: each allowed move carries the reason it exists. Every one of the 13 x 13 pairs is asserted
allowed or refused, so a move added or dropped by mistake (DOWNLOADED -> QUEUED, say) fails a test.
"""

from __future__ import annotations

import itertools

import pytest

from orchestrator._stages import (
    ACTIVE_STAGES,
    INTENT_STAGES,
    TERMINAL_STAGES,
    TRANSITIONS,
    IllegalTransitionError,
    Item,
    Stage,
    check_transition,
)

S = Stage

# (old, new): why the move exists. Anything not listed is illegal.
ALLOWED: dict[tuple[Stage, Stage], str] = {
    # the main walk of a Recuro item
    (S.QUEUED, S.STAGED): "the input is staged (a local file served, or a URL taken as it is)",
    (S.STAGED, S.UPLOADING): "the upload intent is committed before UploadMedia is sent",
    (S.UPLOADING, S.UPLOADED): "UploadMedia answered",
    (S.UPLOADED, S.READY): "the media finished analysis",
    (S.READY, S.STARTING): "the start intent is committed before StartJob is sent",
    (S.STARTING, S.RUNNING): "StartJob answered",
    (S.RUNNING, S.RESTORED): "the job completed",
    (S.RESTORED, S.DOWNLOADING): "the download began",
    (S.DOWNLOADING, S.DOWNLOADED): "the output is verified on disk",
    (S.DOWNLOADED, S.DONE): "the remote media is deleted (or the item is finished without it)",
    # shortcuts the docstring names
    (S.UPLOADED, S.RESTORED): "MediaCrush has no separate start step",
    (S.UPLOADED, S.STARTING): "StartJob tried when the media is predicted ready",
    (S.STARTING, S.UPLOADED): "StartJob said 'not ready yet'; or reconciliation: not started",
    (S.STARTING, S.READY): "reconciliation: the job was not started",
    (S.STARTING, S.RESTORED): "reconciliation: the job was started and has already completed",
    (S.STAGED, S.UPLOADED): "a precheck found the input already on the service: nothing is sent",
    (S.UPLOADED, S.STAGED): "the ingest failed because our own crash cut the service's fetch",
    # reconciliation of an upload intent whose answer was lost
    (S.UPLOADING, S.STAGED): "reconciliation: the upload never arrived",
    (S.UPLOADING, S.PARKED): "reconciliation: ambiguous, a person decides",
    (S.STARTING, S.PARKED): "reconciliation: ambiguous, a person decides",
    # reruns
    (S.DONE, S.QUEUED): "a rerun finds the output gone",
    (S.FAILED, S.QUEUED): "--retry-failed",
    # failures: from every stage before the output is verified on disk
    **{
        (old, S.FAILED): "the item failed"
        for old in (
            S.QUEUED,
            S.STAGED,
            S.UPLOADING,
            S.UPLOADED,
            S.READY,
            S.STARTING,
            S.RUNNING,
            S.RESTORED,
            S.DOWNLOADING,
        )
    },
    # Not listed on purpose:
    # - DOWNLOADED -> FAILED: the output is verified on disk; a later failure (DeleteMedia) must not
    #   fail the item (issue 11: never destroy paid work). The module comment "a move to FAILED is
    #   allowed from every non-terminal stage" is one stage too broad.
    # - anything out of PARKED: the engine never moves a parked item.
    # - any move back into QUEUED other than the two reruns (e.g. DOWNLOADED -> QUEUED).
}

PAIRS = list(itertools.product(Stage, Stage))


def test_the_table_covers_thirteen_stages():
    assert len(Stage) == 13
    assert len(PAIRS) == 169
    assert all(old is not new for old, new in ALLOWED)


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{o.value}->{n.value}" for o, n in PAIRS])
def test_every_pair(old, new):
    """Allowed exactly when listed above (staying put is always allowed: a save of other fields)."""
    if old is new or (old, new) in ALLOWED:
        check_transition(old, new)
        assert old is new or new in TRANSITIONS[old]
    else:
        with pytest.raises(IllegalTransitionError) as info:
            check_transition(old, new)
        assert str(info.value) == f"illegal stage transition {old.value} -> {new.value}"
        assert new not in TRANSITIONS[old]


def test_the_module_table_has_nothing_more():
    """The same check from the other side: every move in TRANSITIONS is one listed above."""
    moves = {(old, new) for old, targets in TRANSITIONS.items() for new in targets}
    assert moves == set(ALLOWED)
    assert set(TRANSITIONS) == set(Stage)


def test_illegal_transition_is_a_bug_not_a_remote_failure():
    assert issubclass(IllegalTransitionError, RuntimeError)


def test_stage_values_are_what_the_journal_stores():
    assert {s.name: s.value for s in Stage} == {s.name: s.name.lower() for s in Stage}


def test_stage_groups():
    assert frozenset({S.DONE, S.FAILED, S.PARKED}) == TERMINAL_STAGES
    assert frozenset({S.UPLOADING, S.STARTING}) == INTENT_STAGES
    # stages in which the item may own media on the account: from the upload intent until the
    # remote media is deleted on the way to DONE
    assert (
        frozenset(
            {
                S.UPLOADING,
                S.UPLOADED,
                S.READY,
                S.STARTING,
                S.RUNNING,
                S.RESTORED,
                S.DOWNLOADING,
                S.DOWNLOADED,
            }
        )
        == ACTIVE_STAGES
    )


def test_terminal_stages_lead_nowhere_but_a_rerun():
    for stage in TERMINAL_STAGES:
        assert TRANSITIONS[stage] <= {S.QUEUED}


@pytest.mark.parametrize("intent", sorted(INTENT_STAGES))
def test_an_intent_is_never_left_for_the_call_again(intent):
    """An intent is resolved by an answer or by reconciliation; it never loops into itself or into
    the other intent."""
    assert not TRANSITIONS[intent] & INTENT_STAGES


@pytest.mark.parametrize(
    ("value", "local"),
    [
        ("/data/a.mov", True),
        ("a.mov", True),
        ("http://x/a.mov", False),
        ("https://x/a.mov", False),
        ("HTTPS://X/A.MOV", False),
        ("Http://x", False),
        ("ftp://x/a.mov", True),
        ("httpx://x", True),
        ("https:/x", True),
    ],
)
def test_item_is_local(value, local):
    assert Item(key="k", seq=0, input=value, output_path="o").is_local is local


def test_item_owns_remote_media_only_with_an_id_not_deleted():
    item = Item(key="k", seq=0, input="a", output_path="o")
    assert not item.owns_remote
    item.remote_id = "a.mov"
    assert item.owns_remote
    item.remote_deleted = True
    assert not item.owns_remote
    item.remote_id = ""
    item.remote_deleted = False
    assert item.owns_remote  # an id, even an empty one, is media to delete
    item.remote_shared = True  # on the service before the batch: not ours to delete
    assert not item.owns_remote


def test_item_defaults():
    item = Item(key="k", seq=3, input="a", output_path="o")
    assert (item.stage, item.size, item.spec_fingerprint, item.stage_token) == (
        S.QUEUED,
        None,
        "",
        None,
    )
    assert (item.remote_id, item.remote_deleted, item.remote_shared) == (None, False, False)
    assert item.restored_url is None
    assert (item.bytes_on_disk, item.output_size, item.sha256, item.attempts) == (0, None, None, 0)
    assert (item.error_code, item.error_message, item.fetches, item.timings) == (None, None, 0, {})
    assert item.timings is not Item(key="j", seq=0, input="a", output_path="o").timings
    assert item != Item(key="k", seq=3, input="a", output_path="o")  # identity, not value, equality
