"""The poll planner on plain numbers: backoff, learned durations, progress rate, sweeps, webhook mode."""

from __future__ import annotations

import itertools

import pytest

from orchestrator._polling import PollPlanner, PollSettings
from orchestrator._service import Phase, RemoteStatus

SETTINGS = PollSettings(min_interval=1.0, max_interval=30.0, margin=0.1)
SWEEP = frozenset({Phase.RUNNING})


def _planner(**changes) -> PollPlanner:
    import attrs

    return PollPlanner(attrs.evolve(SETTINGS, **changes), sweep_phases=SWEEP)


def test_nothing_waiting_means_nothing_to_do():
    """An empty planner plans nothing and never wakes."""
    plan = _planner().plan(0.0)
    assert (plan.sweep, plan.probes, plan.wake_at) == (False, (), None)


def test_bad_intervals_are_refused():
    """min must be positive and not above max."""
    with pytest.raises(ValueError, match="poll intervals"):
        PollSettings(min_interval=5, max_interval=1)


def test_unknown_items_back_off_exponentially():
    """With nothing learned, probes come at min_interval, then 2x, 4x... after each contact."""
    planner = _planner()
    planner.track("a", Phase.PROCESSING, 0.0)
    assert planner.plan(0.5).probes == ()
    assert planner.plan(0.5).wake_at == 1.0
    times = []
    now = 0.0
    for _ in range(4):
        now = planner.plan(now).wake_at
        assert planner.plan(now).probes == ("a",)
        planner.observe("a", RemoteStatus(Phase.PROCESSING), now)
        times.append(now)
    assert times == [1.0, 3.0, 7.0, 15.0]


def test_learned_duration_schedules_one_probe():
    """After items finished a phase in ~10 s, a new item is probed once, just after 10 s."""
    planner = _planner()
    for n in range(3):
        planner.track(f"old{n}", Phase.PROCESSING, 0.0)
        planner.observe(f"old{n}", RemoteStatus(Phase.READY), 10.0)
    planner.track("new", Phase.PROCESSING, 100.0)
    plan = planner.plan(100.0)
    assert plan.probes == ()
    assert plan.wake_at == pytest.approx(111.0)
    assert planner.plan(111.0).probes == ("new",)


def test_durations_grow_with_size():
    """With varied sizes the model fits a line, so a big item is expected to take longer."""
    planner = _planner()
    for n, (size, seconds) in enumerate([(100, 2.0), (200, 4.0), (400, 8.0)]):
        planner.track(f"k{n}", Phase.PROCESSING, 0.0, size=size)
        planner.observe(f"k{n}", RemoteStatus(Phase.READY), seconds)
    planner.track("big", Phase.PROCESSING, 0.0, size=1000)
    assert planner.expected_duration("big") == pytest.approx(20.0)


def test_progress_rate_predicts_completion():
    """An item 25 % through after 5 s is expected done at 20 s (plus the margin)."""
    planner = _planner()
    planner.track("a", Phase.PROCESSING, 0.0)
    planner.plan(1.0)
    planner.observe("a", RemoteStatus(Phase.PROCESSING, fraction=0.25), 5.0)
    assert planner.plan(5.0).wake_at == pytest.approx(22.0)


def test_probe_spacing_is_bounded_by_max_interval():
    """However late the prediction, an item is asked at least every max_interval."""
    planner = _planner()
    planner.track("a", Phase.PROCESSING, 0.0)
    planner.observe("a", RemoteStatus(Phase.PROCESSING, fraction=0.001), 1.0)
    assert planner.plan(1.0).wake_at == pytest.approx(31.0)


def test_sweep_finds_restored_items_and_learns():
    """Swept items are not probed; sweeps back off while nothing is known, and teach the model."""
    planner = _planner()
    for n in range(5):
        planner.track(f"j{n}", Phase.RUNNING, 0.0)
    plan = planner.plan(0.0)
    assert not plan.sweep
    assert plan.probes == ()
    assert plan.wake_at == 1.0
    assert planner.plan(1.0).sweep
    planner.observe_sweep(1.0, [])
    now = planner.plan(1.0).wake_at
    assert now == pytest.approx(3.0)  # backoff while nothing is known
    assert planner.plan(now).sweep
    planner.observe_sweep(now, ["j0", "j1"])
    assert "j0" not in planner
    assert len(planner) == 3
    planner.track("late", Phase.RUNNING, 10.0)
    # j0 and j1 finished between the sweeps at 1 s and 3 s: counted at the middle
    assert planner.expected_duration("late") == pytest.approx(2.0)


def test_overdue_swept_item_gets_a_probe():
    """A job not seen done long after its expected time is probed (failures never show in a sweep)."""
    planner = _planner()
    planner.track("done", Phase.RUNNING, 0.0)
    planner.plan(5.0)
    planner.observe_sweep(5.0, ["done"])
    planner.track("stuck", Phase.RUNNING, 10.0)
    probed_at = None
    now = 10.0
    for _ in range(50):
        plan = planner.plan(now)
        if plan.sweep:
            planner.observe_sweep(now, [])
        if plan.probes:
            probed_at = now
            break
        now = plan.wake_at
    assert probed_at is not None
    assert 10.0 + 5.0 * 1.5 <= probed_at <= 10.0 + 30.0


def test_sweep_intervals_stay_within_bounds():
    """Sweeps are never closer than min_interval nor further apart than max_interval."""
    planner = _planner()
    planner.track("x", Phase.RUNNING, 0.0)
    planner.observe("x", RemoteStatus(Phase.RUNNING, fraction=0.0001), 0.5)
    sweeps = []
    now = 0.0
    while now < 200:
        plan = planner.plan(now)
        if plan.sweep:
            sweeps.append(now)
            planner.observe_sweep(now, [])
        if plan.probes:
            for key in plan.probes:
                planner.observe(key, RemoteStatus(Phase.RUNNING), now)
        now = plan.wake_at
    gaps = [b - a for a, b in itertools.pairwise(sweeps)]
    assert gaps
    assert all(1.0 <= gap <= 30.0 + 1e-9 for gap in gaps)


def _webhook_planner() -> PollPlanner:
    return PollPlanner(
        PollSettings(min_interval=1, max_interval=30, webhook=True, reconcile_interval=300),
        sweep_phases=SWEEP,
    )


def test_webhook_mode_reconciles_slowly_while_callbacks_come():
    """With callbacks asked for, before anything ends only each phase's oldest item is asked (at its
    predictions, backing off: whether callbacks come is what it finds), the others reconcile slowly,
    sweeps only reconcile; once callbacks report completions, an item is asked only when overdue."""
    planner = _webhook_planner()
    planner.track("m", Phase.PROCESSING, 0.0)
    planner.track("j", Phase.RUNNING, 0.0)
    planner.track("m2", Phase.PROCESSING, 1.0)
    planner.track("j2", Phase.RUNNING, 1.0)
    asked, now = set(), 0.0
    while now < 35.0:
        plan = planner.plan(now)
        assert not plan.sweep
        for key in plan.probes:
            asked.add(key)
            planner.observe(key, NOT_YET if key == "m" else RemoteStatus(Phase.RUNNING), now)
        now = plan.wake_at
    assert asked == {"m", "j"}
    planner.observe("m", READY, 40.0, callback=True)  # callbacks come
    for n in range(3):  # (four completions before one may be called overdue)
        planner.track(f"t{n}", Phase.PROCESSING, 0.0)
        planner.observe(f"t{n}", READY, 40.0, callback=True)
    assert "m2" not in planner.plan(61.0).probes
    assert "m2" in planner.plan(62.0).probes  # 1 + 40 x 1.5 + 1: overdue, its callback lost
    assert planner.plan(299.0).sweep is False
    assert planner.plan(300.0).sweep is True


def test_webhook_mode_polls_a_service_that_never_calls_back():
    """Callbacks were asked for but the oldest item was found done with none: the phase is polled at
    its predictions from then on, not reconciled every reconcile_interval."""
    planner = _webhook_planner()
    planner.track("m", Phase.PROCESSING, 0.0)
    planner.track("m2", Phase.PROCESSING, 1.0)
    assert planner.plan(30.0).probes == ("m",)
    planner.observe("m", READY, 30.0)  # done, and no callback said so
    assert _contact(planner, "m2", 30.0) < 60.0  # polled, not left to the reconcile at 301


def test_webhook_mode_expects_no_job_callback_from_a_service_that_sent_no_upload_callback():
    """The media's analysis ended with no callback: jobs are swept as in polling mode from the start,
    not left to a sweep every reconcile_interval."""
    planner = _webhook_planner()
    planner.track("m", Phase.PROCESSING, 0.0)
    planner.observe("m", READY, 10.0)  # found by a probe: the callback never came
    planner.track("j", Phase.RUNNING, 10.0)
    planner.track("j2", Phase.RUNNING, 10.0)
    wake = planner.plan(10.0).wake_at
    assert wake is not None
    assert wake < 10.0 + 30.0


def test_probes_are_limited_and_most_overdue_first():
    """At most max_probes are returned, oldest due first, and the rest are due right after."""
    planner = _planner()
    planner.track("old", Phase.PROCESSING, 0.0)
    planner.observe("old", RemoteStatus(Phase.READY), 1.0)
    for n in range(5):
        planner.track(f"k{n}", Phase.PROCESSING, float(n))
    plan = planner.plan(100.0, max_probes=2)
    assert plan.probes == ("k0", "k1")
    assert plan.wake_at == pytest.approx(3.1)
    assert planner.plan(100.0, max_probes=10).probes == ("k2", "k3", "k4")


def test_with_nothing_known_only_the_oldest_item_scouts():
    """Before any item finished a phase, one item probes for all; the first completion teaches the rest."""
    planner = _planner()
    for n in range(5):
        planner.track(f"k{n}", Phase.PROCESSING, float(n) / 10)
    assert planner.plan(10.0).probes == ("k0",)
    planner.observe("k0", RemoteStatus(Phase.READY), 10.0)
    plan = planner.plan(10.0)
    assert plan.probes == ()
    assert plan.wake_at == pytest.approx(0.1 + 10.0 * 1.1)


def test_a_phase_change_untracks_and_a_failure_teaches_nothing():
    """READY ends PROCESSING; FAILED ends it without becoming a duration sample."""
    planner = _planner()
    planner.track("a", Phase.PROCESSING, 0.0)
    planner.observe("a", RemoteStatus(Phase.FAILED, error_code="X"), 50.0)
    assert "a" not in planner
    planner.track("b", Phase.PROCESSING, 0.0)
    assert planner.expected_duration("b") is None
    with pytest.raises(ValueError, match="waited for"):
        planner.track("c", Phase.READY, 0.0)


# ---------------------------------------------------------------------- earned speculation

READY = RemoteStatus(Phase.READY)
NOT_YET = RemoteStatus(Phase.PROCESSING)


def _learned(planner: PollPlanner, duration: float = 10.0) -> None:
    """Teach the PROCESSING model one duration (an item that finished the phase)."""
    planner.track("teacher", Phase.PROCESSING, 0.0)
    planner.observe("teacher", READY, duration)


def _contact(planner: PollPlanner, key: str, now: float) -> float:
    """Plan from `now` until `key` is contacted; the time of the contact."""
    plan = planner.plan(now)
    while key not in plan.probes:
        assert plan.wake_at is not None
        now = plan.wake_at
        plan = planner.plan(now)
    return now


def test_with_no_record_a_contact_is_a_probe():
    """p = 1/2 with no record: not above the 1/2 a one-request refusal needs."""
    planner = _planner()
    planner.track("a", Phase.PROCESSING, 0.0)
    _contact(planner, "a", 1.0)
    assert not planner.speculate("a", refusal_cost=1)


def test_speculation_needs_a_record_worth_its_refusals():
    """p > c / (1 + c): one hit is enough when a refusal costs 1 request, not when it costs 2."""
    planner = _planner()
    _learned(planner)
    planner.track("a", Phase.PROCESSING, 20.0)
    assert _contact(planner, "a", 20.0) == pytest.approx(31.0)  # predicted at 20 + 10 * 1.1
    assert not planner.speculate("a", refusal_cost=1)  # no record: p = 1/2
    planner.observe("a", READY, 31.0)  # a hit at a prediction
    planner.track("b", Phase.PROCESSING, 40.0)
    _contact(planner, "b", 40.0)
    assert not planner.speculate("b", refusal_cost=2)  # p = 2/3, not above 2/3
    assert planner.speculate("b", refusal_cost=1)  # p = 2/3 > 1/2


def test_refusals_shrink_the_window_and_the_rate():
    """Predictions fail together: one speculative contact at a time after a refusal, and misses count."""
    planner = _planner()
    _learned(planner)
    # four hits at predictions, the last three speculative: the window grows to 4
    for i in range(4):
        key = f"h{i}"
        planner.track(key, Phase.PROCESSING, 100.0 * i)
        at = _contact(planner, key, 100.0 * i)
        assert planner.speculate(key, refusal_cost=1) == (i > 0)  # (no record before the first)
        planner.observe(key, READY, at)
    keys = [f"m{i}" for i in range(8)]
    for key in keys:
        planner.track(key, Phase.PROCESSING, 1000.0)
    probes = planner.plan(1100.0, max_probes=8).probes
    assert sorted(probes) == sorted(keys)
    granted = [key for key in probes if planner.speculate(key, refusal_cost=1)]
    assert len(granted) == 4  # the window: one per speculative hit, from one
    # asked again while unanswered: still granted
    assert planner.speculate(granted[0], refusal_cost=1)
    planner.observe(granted[0], NOT_YET, 1100.5)  # refused
    others = [key for key in probes if key not in granted]
    assert not any(planner.speculate(key, refusal_cost=1) for key in others)  # window back to one


def test_a_resumed_item_is_predicted_from_when_its_phase_began():
    """`since` from the journal: an item waiting since 0 is due at 11 even if this run began at 8."""
    planner = _planner()
    _learned(planner)
    planner.track("a", Phase.PROCESSING, 8.0, since=0.0)
    assert planner.plan(8.0).wake_at == pytest.approx(11.0)
    planner.track("b", Phase.PROCESSING, 8.0)
    assert planner.expected_duration("b") == pytest.approx(10.0)
    assert planner.plan(11.0).probes == ("a",)


def test_a_contact_made_early_to_keep_in_touch_is_never_speculative():
    """Capped at max_interval before its prediction, a contact only asks: it may not be the next step."""
    planner = _planner()
    for i in range(6):  # a record of hits
        key = f"h{i}"
        planner.track(key, Phase.PROCESSING, 0.0)
        _contact(planner, key, 0.0)
        planner.observe(key, READY, 100.0)
    planner.track("slow", Phase.PROCESSING, 200.0)
    planner.observe("slow", RemoteStatus(Phase.PROCESSING, fraction=0.1), 210.0)  # done at ~300
    assert planner.plan(240.0).probes == ("slow",)  # 210 + max_interval 30: before its prediction
    assert not planner.speculate("slow", refusal_cost=1)


def test_a_phase_nothing_is_known_about_is_swept_at_its_oldest_items_pace():
    """Items entering a swept phase one after another do not each ask for a sweep of their own."""
    planner = _planner()
    sweeps = []
    now = 0.0
    while now < 10.0:
        if now % 0.5 == 0:
            planner.track(f"j{now}", Phase.RUNNING, now)  # one more job every half second
        plan = planner.plan(now)
        if plan.sweep:
            sweeps.append(now)
            planner.observe_sweep(now, [])
        assert plan.probes == ()  # nothing known: sweeps reveal completions, nobody is probed yet
        now = round(now + 0.05, 2)
    assert sweeps == [1.0, 3.0, 7.0]  # the oldest item's backoff: 1, 2, 4 s


def test_the_oldest_swept_item_is_probed_when_overdue_and_passes_the_role_on():
    """A failed job never shows in a sweep: the oldest item is probed; once it is gone, the next one."""
    planner = _planner(max_interval=10.0)
    planner.track("a", Phase.RUNNING, 0.0)
    planner.track("b", Phase.RUNNING, 1.0)
    assert planner.plan(10.0).probes == ("a",)
    assert planner.plan(11.0).probes == ()  # b waits: a sweep or the oldest item will tell
    planner.observe("a", RemoteStatus(Phase.FAILED), 12.0)
    assert planner.plan(12.0).probes == ("b",)


def test_stale_news_of_an_earlier_phase_does_not_end_the_wait():
    """A late "media ready" (an upload callback) for an item whose job runs leaves it watched."""
    planner = _planner(max_interval=10.0)
    planner.track("a", Phase.RUNNING, 0.0)
    planner.observe("a", READY, 1.0)
    assert "a" in planner
    assert planner.plan(10.0).probes == ("a",)  # still probed when overdue


# ---------------------------------------------------------------------- latency, callbacks, the tail


def test_a_contact_still_unanswered_is_not_asked_again():
    """An answer slower than min_interval (a 400 ms round trip at a small time scale) is waited for:
    the same question is not sent twice. A contact that got no answer is planned again at once."""
    planner = _planner()
    _learned(planner)
    planner.track("a", Phase.PROCESSING, 0.0)
    assert _contact(planner, "a", 0.0) == pytest.approx(11.0)
    for now in (12.0, 13.5, 20.0):  # well past min_interval, the answer still on its way
        assert planner.plan(now).probes == ()
    planner.unanswered("a")  # the probe failed
    assert planner.plan(20.0).probes == ("a",)
    assert planner.plan(49.0).probes == ()
    assert planner.plan(50.0).probes == ("a",)  # an answer lost for good: asked after max_interval


def test_a_phase_callbacks_report_is_probed_only_when_overdue():
    """Callbacks reported the phase's completions (the upload's notify_url): an item is not polled at
    its prediction, only once overdue (its callback may be lost); when probes find most completions,
    the phase is polled at predictions again."""
    planner = _planner()
    for n in range(4):  # (fewer completions say too little to call an item overdue)
        planner.track(f"t{n}", Phase.PROCESSING, 0.0)
        planner.observe(f"t{n}", READY, 10.0, callback=True)
    planner.track("new", Phase.PROCESSING, 100.0)
    plan = planner.plan(111.0)
    assert plan.probes == ()
    # overdue at half again its expected time (callbacks teach exact durations), plus min_interval
    assert plan.wake_at == pytest.approx(100.0 + 10.0 * 1.5 + 1.0)
    assert planner.plan(116.0).probes == ("new",)
    planner.observe("new", READY, 116.0)  # found by the probe: its callback never came
    for n in range(4):  # callbacks stop: probes find the next completions
        planner.track(f"p{n}", Phase.PROCESSING, 200.0)
        _contact(planner, f"p{n}", 200.0)
        planner.observe(f"p{n}", READY, 240.0)
    planner.track("polled", Phase.PROCESSING, 300.0)
    assert _contact(planner, "polled", 300.0) < 300.0 + planner.expected_duration("polled") * 2


def test_one_or_two_completions_do_not_call_the_others_overdue():
    """The first callbacks came from two small items (2 s): the large ones, 5 s in, are not probed as
    overdue; only the oldest keeps in touch until more has been learned."""
    planner = _planner()
    for key in ("big", "big2", "big3"):
        planner.track(key, Phase.PROCESSING, 0.0)
    for n in range(2):
        planner.track(f"small{n}", Phase.PROCESSING, 3.0)
        planner.observe(f"small{n}", READY, 5.0, callback=True)
    assert planner.plan(6.0).probes == ()
    assert planner.plan(30.0).probes == ("big",)  # the scout, at max_interval


def _teach_running(planner: PollPlanner, duration: float) -> None:
    """Four jobs took `duration` (enough for the durations to call an item overdue)."""
    for n in range(4):
        planner.track(f"teacher{n}", Phase.RUNNING, 0.0)
    planner.observe_sweep(duration, [f"teacher{n}" for n in range(4)])


def test_sweeps_are_a_fraction_of_the_typical_duration_apart():
    """Jobs ending every 0.1 s do not each get a sweep: sweeps are sweep_fraction x typical apart."""
    planner = _planner(sweep_fraction=1 / 16, max_interval=60.0)
    _teach_running(planner, 32.0)  # typical 32 s: sweeps 2 s apart
    for n in range(64):
        planner.track(f"j{n}", Phase.RUNNING, 100.0 + n / 10)
    sweeps = []
    now = 100.0
    while len(planner) and now < 400.0:
        plan = planner.plan(now)
        if plan.sweep:
            sweeps.append(now)
            done = [f"j{n}" for n in range(64) if 100.0 + n / 10 + 32.0 <= now]
            planner.observe_sweep(now, done)
        assert plan.wake_at is not None or not len(planner)
        now = plan.wake_at if plan.wake_at is not None else now
    assert not len(planner)
    gaps = [b - a for a, b in itertools.pairwise(sweeps)]
    assert min(gaps) >= 2.0 - 1e-9
    assert len(sweeps) <= 6  # the 6.4 s of completions, 2 s apart (and the first at the earliest)


def test_a_late_item_in_the_tail_is_looked_for_every_spacing_then_less_often():
    """The last job drew a long time: sweeps look for it every spacing past its prediction (not on a
    backoff its earlier misses grew), then a quarter of how late it is; overdue, it is probed."""
    planner = _planner(sweep_fraction=1 / 16, max_interval=60.0)
    _teach_running(planner, 32.0)
    planner.track("late", Phase.RUNNING, 100.0)
    sweeps, probed = [], None
    now = 100.0
    while probed is None:
        plan = planner.plan(now)
        if plan.sweep:
            sweeps.append(now)
            planner.observe_sweep(now, [])
        if plan.probes:
            probed = now
        now = plan.wake_at
    # the tail (the batch's last item): every half spacing
    assert sweeps[:6] == pytest.approx([132.0, 133.0, 134.0, 135.0, 136.0, 137.0])
    gaps = [b - a for a, b in itertools.pairwise(sweeps)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(gaps))
    assert gaps[-1] > 2.0
    assert probed == pytest.approx(100.0 + 32.0 * 2.5 + 1.0)


def test_only_the_tail_is_swept_twice_as_often():
    """While an item still waits behind the late one (its analysis), sweeps keep the full spacing."""
    planner = _planner(sweep_fraction=1 / 16, max_interval=60.0)
    _teach_running(planner, 32.0)
    planner.track("late", Phase.RUNNING, 100.0)
    planner.track("behind", Phase.PROCESSING, 100.0)
    sweeps = []
    now = 100.0
    while len(sweeps) < 4:
        plan = planner.plan(now)
        if plan.sweep:
            sweeps.append(now)
            planner.observe_sweep(now, [])
        for key in plan.probes:
            planner.observe(key, RemoteStatus(Phase.PROCESSING), now)
        now = plan.wake_at
    assert sweeps == pytest.approx([132.0, 134.0, 136.0, 138.0])


# ---------------------------------------------------------------------- what contacts teach


def test_a_contact_before_the_target_that_finds_the_item_done_counts_as_a_hit():
    """Kept in touch (max_interval) before its prediction and found done: a contact at the prediction
    would have hit too, so it counts toward earning speculation (its misses would say nothing)."""
    planner = _planner(max_interval=5.0)
    _learned(planner)  # 10 s: targets at 11 s, past max_interval
    planner.track("early", Phase.PROCESSING, 0.0)
    assert planner.plan(5.0).probes == ("early",)
    planner.observe("early", READY, 5.0)  # done already
    planner.track("next", Phase.PROCESSING, 10.0)
    assert planner.plan(15.0).probes == ("next",)  # max_interval again: not on target
    assert not planner.speculate("next", refusal_cost=1)  # never speculative so early
    planner.observe("next", NOT_YET, 15.0)  # a miss before the target: not scored
    planner.track("due", Phase.PROCESSING, 30.0, since=22.0)  # (resumed: its target is in reach)
    at = _contact(planner, "due", 30.0)
    assert at < 35.0  # at its target, not kept in touch
    assert planner.speculate("due", refusal_cost=1)  # p = 2/3 from the one early hit


def test_a_completion_found_by_a_contact_is_learned_at_the_middle_of_its_bracket():
    """Found waiting at 4 s and done at 8 s, it ended between them: learned as 6 s, not 8 s."""
    planner = _planner(max_interval=4.0)
    planner.track("a", Phase.PROCESSING, 0.0)
    assert planner.plan(4.0).probes == ("a",)
    planner.observe("a", NOT_YET, 4.0)
    assert planner.plan(8.0).probes == ("a",)
    planner.observe("a", READY, 8.0)
    planner.track("b", Phase.PROCESSING, 100.0)
    assert planner.expected_duration("b") == pytest.approx(6.0)


def test_a_callback_teaches_the_exact_duration():
    """A callback says when the phase ended, whatever contacts came before."""
    planner = _planner(max_interval=4.0)
    planner.track("a", Phase.PROCESSING, 0.0)
    planner.plan(4.0)
    planner.observe("a", NOT_YET, 4.0)
    planner.observe("a", READY, 9.0, callback=True)
    planner.track("b", Phase.PROCESSING, 100.0)
    assert planner.expected_duration("b") == pytest.approx(9.0)


def test_a_miss_of_an_items_own_progress_does_not_move_the_learned_margin():
    """The item's progress rate predicted too early: the learned durations' margin stays."""
    planner = _planner()
    _learned(planner)
    planner.track("p", Phase.PROCESSING, 0.0)
    planner.observe("p", RemoteStatus(Phase.PROCESSING, fraction=0.5), 1.0)  # "done at 2 s"
    at = _contact(planner, "p", 1.0)
    assert at < 11.0  # at its own prediction, not the model's
    planner.observe("p", NOT_YET, at)  # it was not
    planner.track("m", Phase.PROCESSING, 100.0)
    assert _contact(planner, "m", 100.0) == pytest.approx(111.0)  # 10 s x (1 + margin 0.1)


def test_reported_durations_that_vary_widely_keep_the_overdue_point_late():
    """Jobs waited in the service's queue (10, 10, 10 and 30 s, all called back): an item 15 s in is not
    taken for a lost callback; the overdue point follows the longest seen (capped at overdue_factor)."""
    planner = _webhook_planner()
    for n, took in enumerate((10.0, 10.0, 10.0, 30.0)):
        planner.track(f"t{n}", Phase.RUNNING, 0.0)
        planner.observe(f"t{n}", RemoteStatus(Phase.RESTORED), took, callback=True)
    planner.track("j", Phase.RUNNING, 100.0)
    planner.track("behind", Phase.PROCESSING, 100.0)  # (keeps the sweeps out of the tail)
    plan = planner.plan(120.0)
    assert "j" not in plan.probes
    assert planner.plan(100.0 + 10.0 * 2.5 + 1.0).probes == ("j",)
