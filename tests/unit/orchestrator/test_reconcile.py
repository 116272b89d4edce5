"""Verdicts for unknown outcomes: adopt, repeat, or park; never guess."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator._reconcile import (
    Reconciler,
    Resolution,
    Verdict,
    judge_start,
    judge_uploads,
    upload_candidates,
)
from orchestrator._scheduler import Priority
from orchestrator._service import Phase, RemoteMedia, RemoteStatus
from orchestrator._stages import Item, Stage


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
    # two open uploads and one new media: either could be its owner, so neither adopts it
    verdicts = judge_uploads([_item("x"), _item("y")], ["f1"], fetched={})
    assert verdicts.keys() == {"x", "y"}
    assert {v.verdict for v in verdicts.values()} == {Verdict.PARKED}
    assert all(v.remote_id is None for v in verdicts.values())
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


def test_every_start_verdict_carries_the_status_it_was_judged_from():
    """The Resolution keeps the status seen (its details), whatever the verdict."""
    for status in (
        RemoteStatus(Phase.RUNNING),
        RemoteStatus(Phase.READY),
        RemoteStatus(Phase.FAILED, error_code="E"),
        RemoteStatus(Phase.UNKNOWN, state="Mystery"),
    ):
        assert judge_start(status).status is status
    assert "no job" in judge_start(RemoteStatus(Phase.READY)).reason
    parked = judge_start(RemoteStatus(Phase.UNKNOWN))  # no state name: the phase is named instead
    assert "'unknown'" in parked.reason


def test_the_reasons_name_the_evidence():
    """A person reading the log (or a parked item) sees which evidence led to the verdict."""
    (not_sent,) = judge_uploads([_item("x")], [], fetched={"x": False}).values()
    assert "no new media" in not_sent.reason
    assert "no fetch" in not_sent.reason
    (parked,) = judge_uploads([_item("x")], [], fetched={"x": True}).values()
    assert "fetched the staged file" in parked.reason
    assert "no new media" in parked.reason


def test_an_item_without_fetch_evidence_counts_as_not_fetched():
    """Only a fetch seen parks an item: no evidence (an input that was never staged) is no fetch."""
    verdicts = judge_uploads([_item("x"), _item("y")], [], fetched={"y": True})
    assert verdicts["x"].verdict is Verdict.NOT_SENT
    assert verdicts["y"].verdict is Verdict.PARKED


# --------------------------------------------------------------------------- the Reconciler's reads


NOW = 1_700_000_000.0  # the journal's wall clock in these tests


class _Gate:
    """The Gate's calls and batch facts, recorded: (priority, function name, args) per remote call."""

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self.meta: dict[str, Any] = dict(meta or {})
        self.calls: list[tuple[Priority | None, str, tuple[Any, ...]]] = []

    def wall(self) -> float:
        return NOW

    async def call(self, priority: Priority | None, fn: Callable[..., Any], *args: Any) -> Any:
        self.calls.append((priority, fn.__name__, args))
        return await fn(*args)

    async def get_meta(self, name: str) -> Any:
        return self.meta.get(name)

    async def set_meta(self, name: str, value: Any) -> None:
        self.meta[name] = value


class _Adapter:
    """ListMedia and GetProgress answers; `fail` makes the listing raise it."""

    sweep_phases = frozenset({Phase.RESTORED})  # a Sweeper: its listing is ListMedia

    def __init__(self, media: Sequence[str] = (), status: RemoteStatus | None = None) -> None:
        self.media = [RemoteMedia(m, None) for m in media]
        self.answer = status or RemoteStatus(Phase.RUNNING)
        self.fail: Exception | None = None
        self.asked: list[str] = []

    async def sweep(self) -> list[RemoteMedia]:
        if self.fail is not None:
            raise self.fail
        return list(self.media)

    async def status(self, remote_id: str) -> RemoteStatus:
        self.asked.append(remote_id)
        return self.answer


class _Stager:
    """A staging access log: fetches per token; None for a token it cannot tell about."""

    def __init__(self, fetches: dict[str, int | None]) -> None:
        self._fetches = fetches

    def fetches(self, token: str) -> int | None:
        return self._fetches[token]


class _Clock:
    """Records the sleeps asked for, and returns at once."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


SETTLE = 30.0


def _open(key: str, *, stage: Stage = Stage.UPLOADING, age: float | None = None, **kw: Any) -> Item:
    """An item with an open intent entered `age` seconds ago (no time recorded when None)."""
    item = Item(key=key, seq=0, input=key, output_path="o", stage=stage, **kw)
    if age is not None:
        item.timings[stage.value] = NOW - age
    return item


def _reconciler(
    adapter: _Adapter,
    gate: _Gate,
    items: Sequence[Item] = (),
    *,
    stager: _Stager | None = None,
    clock: _Clock | None = None,
) -> Reconciler:
    return Reconciler(
        adapter,  # type: ignore[arg-type]
        gate,  # type: ignore[arg-type]
        {i.key: i for i in items},
        stager=stager,  # type: ignore[arg-type]
        clock=clock or _Clock(),
        settle=SETTLE,
    )


async def test_uploads_are_judged_from_one_listing_at_finish_priority():
    """One ListMedia, through the priority gate ahead of new work; media owned by the journal (any
    item's remote id) and media in the baseline are not candidates; the listing is returned."""
    adapter = _Adapter(media=["mine", "before", "new"])
    gate = _Gate({"baseline": ["before"]})
    done = _open("done", stage=Stage.DONE, remote_id="mine")
    open_upload = _open("x", age=SETTLE + 1)
    reconciler = _reconciler(adapter, gate, [done, open_upload])
    verdicts, listing = await reconciler.uploads([open_upload])
    assert gate.calls == [(Priority.FINISH, "sweep", ())]
    assert listing == adapter.media
    assert verdicts == {"x": Resolution(Verdict.ADOPT, remote_id="new")}


async def test_without_a_baseline_every_unowned_media_is_a_candidate():
    """Before a baseline is taken, media the journal does not own all count (so two park the item)."""
    adapter = _Adapter(media=["a", "b"])
    item = _open("x", age=SETTLE + 1)
    verdicts, _ = await _reconciler(adapter, _Gate(), [item]).uploads([item])
    assert verdicts["x"].verdict is Verdict.PARKED
    assert "a, b" in verdicts["x"].reason


async def test_a_fetch_counted_by_the_journal_or_seen_by_the_stager_parks_the_upload():
    """Fetch evidence: the journal's count (earlier runs) or this run's staging log, whichever is
    larger; a stager that cannot tell, or an item never staged, is no evidence of a fetch."""
    items = [
        _open("journal", fetches=1, stage_token="t1"),  # counted before a restart; log empty now
        _open("log", stage_token="t2"),
        _open("log-twice", stage_token="t3"),
        _open("unknown", stage_token="t4"),  # the stager cannot tell
        _open("nothing", stage_token="t5"),
        _open("url"),  # an URL input: never staged, no token
    ]
    stager = _Stager({"t1": 0, "t2": 1, "t3": 2, "t4": None, "t5": 0})
    reconciler = _reconciler(_Adapter(), _Gate(), items, stager=stager)
    verdicts, _ = await reconciler.uploads(items, settle=False)
    assert {k: v.verdict for k, v in verdicts.items()} == {
        "journal": Verdict.PARKED,
        "log": Verdict.PARKED,
        "log-twice": Verdict.PARKED,
        "unknown": Verdict.NOT_SENT,
        "nothing": Verdict.NOT_SENT,
        "url": Verdict.NOT_SENT,
    }


async def test_without_a_stager_the_journal_count_is_the_evidence():
    """No staging server this run (URL inputs only): the journal's fetch count still decides."""
    items = [_open("seen", fetches=1, stage_token="t"), _open("unseen", stage_token="u")]
    verdicts, _ = await _reconciler(_Adapter(), _Gate(), items).uploads(items, settle=False)
    assert verdicts["seen"].verdict is Verdict.PARKED
    assert verdicts["unseen"].verdict is Verdict.NOT_SENT


async def test_uploads_wait_until_the_newest_intent_is_settled():
    """By default the listing waits until every intent is `settle` seconds old: a request still in
    flight has then been processed, and its media is on the account."""
    clock = _Clock()
    items = [_open("old", age=SETTLE + 5), _open("new", age=10.0)]
    await _reconciler(_Adapter(), _Gate(), items, clock=clock).uploads(items)
    assert clock.slept == [SETTLE - 10.0]


async def test_a_short_remaining_wait_is_still_waited():
    """Half a second short of settled is half a second of waiting, not none."""
    clock = _Clock()
    item = _open("x", age=SETTLE - 0.5)
    await _reconciler(_Adapter(), _Gate(), [item], clock=clock).uploads([item])
    assert clock.slept == [0.5]


async def test_settled_or_undated_intents_and_settle_false_do_not_wait():
    """An intent older than the interval, one with no recorded time (treated as old), or a caller that
    already knows the answer is lost (`settle=False`) lists at once."""
    clock = _Clock()
    old, undated, fresh = _open("old", age=SETTLE + 1), _open("undated"), _open("fresh", age=0.0)
    reconciler = _reconciler(_Adapter(), _Gate(), [old, undated, fresh], clock=clock)
    await reconciler.uploads([old, undated])
    await reconciler.uploads([fresh], settle=False)
    assert clock.slept == []


async def test_an_intent_dated_in_the_future_waits_one_interval_at_most():
    """A wall clock stepped back makes an intent look younger than now; the wait is still bounded."""
    clock = _Clock()
    item = _open("x", age=-3600.0)
    await _reconciler(_Adapter(), _Gate(), [item], clock=clock).uploads([item])
    assert clock.slept == [SETTLE]


async def test_start_is_judged_from_one_progress_of_the_items_media():
    """One GetProgress of the item's media at FINISH priority, after its intent settled; the verdict
    and the status it was judged from are both returned."""
    status = RemoteStatus(Phase.READY)
    adapter, gate, clock = _Adapter(status=status), _Gate(), _Clock()
    item = _open("x", stage=Stage.STARTING, age=SETTLE - 10, remote_id="f1")
    resolution, seen = await _reconciler(adapter, gate, [item], clock=clock).start(
        item, settle=True
    )
    assert gate.calls == [(Priority.FINISH, "status", ("f1",))]
    assert seen is status
    assert resolution == judge_start(status)
    assert resolution.verdict is Verdict.NOT_SENT
    assert clock.slept == [10.0]


async def test_start_without_settling_asks_at_once():
    clock = _Clock()
    item = _open("x", stage=Stage.STARTING, age=0.0, remote_id="f1")
    resolution, _ = await _reconciler(_Adapter(), _Gate(), [item], clock=clock).start(
        item, settle=False
    )
    assert resolution.verdict is Verdict.STARTED
    assert clock.slept == []


async def test_the_baseline_is_the_unowned_media_sorted_and_feeds_later_reconciliations():
    """take_baseline lists the account (FINISH priority) and remembers what the journal does not own;
    an upload reconciled later ignores exactly those media."""
    adapter = _Adapter(media=["z", "mine", "a"])
    gate = _Gate()
    owner = _open("owner", stage=Stage.RUNNING, remote_id="mine")
    reconciler = _reconciler(adapter, gate, [owner])
    await reconciler.take_baseline(None)
    assert gate.calls == [(Priority.FINISH, "sweep", ())]
    assert gate.meta == {"baseline": ["a", "z"]}
    adapter.media.append(RemoteMedia("new", None))
    item = _open("x")
    verdicts, _ = await reconciler.uploads([item], settle=False)
    assert verdicts["x"] == Resolution(Verdict.ADOPT, remote_id="new")


async def test_the_baseline_reuses_a_listing_it_is_given():
    """The listing of the reconciliation just done serves as the baseline: no second ListMedia."""
    gate = _Gate()
    owner = _open("owner", stage=Stage.UPLOADED, remote_id="mine")
    await _reconciler(_Adapter(media=["other"]), gate, [owner]).take_baseline(
        [RemoteMedia("b", None), RemoteMedia("mine", None), RemoteMedia("a", "u")]
    )
    assert gate.calls == []
    assert gate.meta == {"baseline": ["a", "b"]}


async def test_a_failed_listing_keeps_the_old_baseline_and_logs_only_the_error_type(caplog):
    """No listing, no new baseline (an empty one would make every media a candidate); the warning
    names the error's type, not its text (which may quote a request)."""
    adapter = _Adapter(media=["a"])
    adapter.fail = RuntimeError("GET /v1/media?secret=hunter2")
    gate = _Gate({"baseline": ["old"]})
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        await _reconciler(adapter, gate).take_baseline(None)
    assert gate.meta == {"baseline": ["old"]}
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "could not list" in message
    assert "RuntimeError" in message
    assert "hunter2" not in message


async def test_the_callback_of_the_items_own_upload_names_its_media():
    """An upload whose callback (found by the item's staging token) named media adopts that media,
    whatever else is new on the account; the verdict says the callback decided."""
    item = _open("x", stage_token="t1")
    adapter = _Adapter(media=["m1", "m2"])
    verdicts, _ = await _reconciler(adapter, _Gate(), [item]).uploads(
        [item], settle=False, attributed={"t1": "m2"}
    )
    assert (verdicts["x"].verdict, verdicts["x"].remote_id) == (Verdict.ADOPT, "m2")
    assert "callback" in verdicts["x"].reason


async def test_media_another_uploads_callback_named_is_not_a_candidate():
    """Media a callback attributed to another upload is that upload's: the one left is this item's."""
    item = _open("x", stage_token="t1")
    adapter = _Adapter(media=["m1", "m9"])
    verdicts, _ = await _reconciler(adapter, _Gate(), [item]).uploads(
        [item], settle=False, attributed={"t9": "m9"}
    )
    assert (verdicts["x"].verdict, verdicts["x"].remote_id) == (Verdict.ADOPT, "m1")


async def test_one_candidate_waits_while_another_item_is_uploading():
    """Another item's upload still open (not among those judged) may own the one new media: wait."""
    item, other = _open("x", stage_token="t1"), _open("y", stage_token="t2")
    adapter = _Adapter(media=["m1"])
    verdicts, _ = await _reconciler(adapter, _Gate(), [item, other]).uploads([item], settle=False)
    assert verdicts["x"].verdict is Verdict.WAIT
    other.stage = Stage.UPLOADED  # its answer landed: the candidate is this item's
    other.remote_id = "m0"
    verdicts, _ = await _reconciler(adapter, _Gate(), [item, other]).uploads([item], settle=False)
    assert (verdicts["x"].verdict, verdicts["x"].remote_id) == (Verdict.ADOPT, "m1")


async def test_ambiguous_uploads_wait_only_while_callbacks_are_expected():
    items = [_open("x", stage_token="t1"), _open("y", stage_token="t2")]
    adapter = _Adapter(media=["m1", "m2"])
    reconciler = _reconciler(adapter, _Gate(), items)
    waiting, _ = await reconciler.uploads(items, settle=False, callbacks_expected=True)
    parked, _ = await reconciler.uploads(items, settle=False)
    assert {v.verdict for v in waiting.values()} == {Verdict.WAIT}
    assert {v.verdict for v in parked.values()} == {Verdict.PARKED}
