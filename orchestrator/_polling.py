"""Budget-aware polling: when to sweep (ListMedia) and which items to probe (GetProgress). Pure, no I/O.

The planner is told when items start waiting for the service, what each observation showed, and what the
time is (`now`, from an injected clock); `plan(now)` answers what to ask next and when to wake up.

- **Sweeps** reveal a whole phase for the batch in one call (Recuro's ListMedia shows every restored file).
  One is due once it will collect a share of the waiting items, or once the earliest has waited a little
  past its prediction; sweeps are `sweep_fraction` of the typical duration apart (half that for the
  batch's last few items, whose detection lag is the batch's own), never further than `max_interval`.
- **Probes** (one call per item) go to items whose phase a sweep cannot reveal (Recuro: media analysis), at
  their predicted completion, and to swept items that are overdue (a failed job never shows in a sweep).
  A question still unanswered is not asked again (an answer may take longer than `min_interval`).
- **Callbacks.** A phase whose completions callbacks report (most of its recent ones: Recuro's upload
  carries its own notify_url) is not polled at predictions: its items are probed only once overdue, in
  case a callback was lost. Webhook mode (callbacks asked for every step) assumes they come until a
  phase's completions show otherwise; meanwhile only each phase's oldest item is asked, at its
  predictions, and sweeps only reconcile (`reconcile_interval`).
- **Prediction.** From the item's own progress rate when the service reported progress (fraction done per
  second since the phase began), else from the durations of items that already finished that phase (a
  least-squares line over size when sizes vary, else the median: `_durations.py`), else a backoff from
  `min_interval`. Each probe is spaced between `min_interval` and `max_interval` from the previous contact.
  A callback says when a phase ended; a contact only that it ended after the last contact that found the
  item waiting, so the middle of that bracket is learned. Model predictions lean late by a margin each
  phase steers so that most contacts at them hit: a probe too early costs a request, one too late only a
  little time.
- **Earned speculation.** A service whose next step doubles as a probe (Recuro's StartJob on media predicted
  ready: accepted, it saves the GetProgress; refused, it learned nothing) is asked that way only while
  contacts prove well timed (`_speculation.py`). Every contact at a prediction is scored when answered
  (one made earlier, to keep in touch, scores only a hit: a contact at the prediction would have hit
  too); only one at the prediction may be the next step itself. A resumed item's phase began when the
  journal says, not when this run started waiting, so a rerun's predictions are as good as the first's.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from typing import Final

import attrs

from ._durations import Durations
from ._service import Phase, RemoteStatus
from ._speculation import SpeculationRecord

__all__ = ["Plan", "PollPlanner", "PollSettings"]

_WAITING = frozenset({Phase.PROCESSING, Phase.RUNNING})
# what ends each waited-for phase (anything else is progress, or stale news of an earlier phase)
PHASE_ENDS: Final = {
    Phase.PROCESSING: frozenset(
        {Phase.READY, Phase.RUNNING, Phase.RESTORED, Phase.FAILED, Phase.GONE}
    ),
    Phase.RUNNING: frozenset({Phase.RESTORED, Phase.FAILED, Phase.GONE}),
}
# a sweep is due once it will collect this many of the waiting items (at least `_SWEEP_BATCH`)
_SWEEP_SHARE, _SWEEP_BATCH = 1 / 8, 4
# in the bulk of a batch (more items wait than one sweep's share), the earliest item may wait this
# fraction of the typical duration past its prediction for a sweep; in the tail, `spacing` at most
_SWEEP_LAG = 1 / 4
# while a swept phase has no completions, it is swept every this fraction of its scout's expected time
_COLD_FRACTION = 1 / 4
# a phase whose completions callbacks report (this share of its recent ones, at least) is not polled
# for them: its items are probed only when overdue, as swept ones are (a callback may be lost)
_REPORTED_SHARE, _REPORTS = 3 / 4, 16
# such an item is overdue at this multiple of its expected duration, or of the longest seen so far
# (callbacks teach exact durations; one longer than all of them has most likely lost its callback)
_REPORTED_OVERDUE, _REPORTED_OVERDUE_SPREAD = 1.5, 1.25
_MATURE = 4  # completions learned before the durations may call an item overdue


@attrs.frozen
class PollSettings:
    """Knobs of the planner (seconds on the runner's clock).

    Attributes:
        min_interval: never contact the same item (or sweep) again sooner than this.
        max_interval: contact every waiting item (or sweep) at least this often.
        margin: probe this fraction of the expected duration after the predicted completion.
        overdue_factor: a swept item not seen done after this multiple of its expected duration is probed.
        sweep_fraction: sweeps are at least this fraction of the swept phase's typical duration apart,
            and in the tail of a batch an item waits at most about that long past its prediction.
        webhook: callbacks were asked for every step: assumed to drive the transitions until what a
            phase's completions show says otherwise (then it is polled).
        reconcile_interval: how often webhook mode sweeps, and asks an item nothing is known about.
    """

    min_interval: float = 2.0
    max_interval: float = 60.0
    margin: float = 0.1
    overdue_factor: float = 2.5
    sweep_fraction: float = 1 / 16
    webhook: bool = False
    reconcile_interval: float = 300.0

    def __attrs_post_init__(self) -> None:
        if not (0 < self.min_interval <= self.max_interval):
            raise ValueError(
                f"poll intervals must satisfy 0 < min ({self.min_interval}) <= max ({self.max_interval})"
            )


@attrs.frozen
class Plan:
    """What to ask now: a sweep, probes (most overdue first), and when to plan again otherwise."""

    sweep: bool
    probes: tuple[str, ...]
    wake_at: float | None


@attrs.define
class _Waiting:
    phase: Phase
    entered: float
    size: int | None
    last_contact: float  # the last probe, callback or sweep that found it not done
    last_probe: float  # the last probe or callback
    contacts: int = 0
    predicted: float | None = None  # when its own progress rate says it ends (no margin)
    # a contact was handed out (scored when answered); it came at the item's target, not early to keep
    # in touch (only such a contact may be the next step itself); it is the next step itself
    contacted: bool = False
    on_target: bool = False
    speculating: bool = False
    asked_at: float = 0.0  # when the contact handed out was sent
    # its target came from the learned durations (not the item's own progress)
    by_model: bool = False
    seen_waiting: float | None = None  # when the last contact that found it not done was sent


class PollPlanner:
    """Decides sweeps and probes for the items that wait on the service (see the module docstring)."""

    def __init__(
        self,
        settings: PollSettings,
        *,
        sweep_phases: Iterable[Phase] = (),
        speculative_phase: Phase | None = None,
    ) -> None:
        self._settings = settings
        # the phase whose end the next step itself may probe (Recuro: StartJob on media predicted ready)
        self._speculative_phase = speculative_phase
        self._sweep_phases = frozenset(sweep_phases) & _WAITING
        self._items: dict[str, _Waiting] = {}
        # per phase, what is learned of its durations (and how late predictions from them lean)
        self._models = {phase: Durations(margin=settings.margin) for phase in _WAITING}
        self._last_sweep: float | None = None
        self._peak_swept = (
            0  # the most items seen waiting in swept phases at once (the batch's width)
        )
        self._prev_sweep: float | None = None
        self._scouts: dict[Phase, _Waiting] = {}
        self._verdicts: dict[Phase, bool] = {}  # `_reported` per phase, as of this plan
        self._speculation = SpeculationRecord()
        # per phase, for each recent completion: whether a callback reported it
        self._reports: dict[Phase, collections.deque[bool]] = {
            phase: collections.deque(maxlen=_REPORTS) for phase in _WAITING
        }

    @property
    def settings(self) -> PollSettings:
        """The planner's knobs."""
        return self._settings

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    # ------------------------------------------------------------------ what happened

    def track(
        self,
        key: str,
        phase: Phase,
        now: float,
        *,
        size: int | None = None,
        since: float | None = None,
    ) -> None:
        """`key` now waits for the service to finish `phase` (PROCESSING or RUNNING).

        `since` is when the phase began, if earlier than `now` (an item resumed from the journal).
        """
        if phase not in _WAITING:
            raise ValueError(f"only {sorted(_WAITING)} are waited for, not {phase}")
        current = self._items.get(key)
        if current is not None and current.phase is phase:
            return
        entered = now if since is None else min(since, now)
        self._items[key] = _Waiting(
            phase=phase, entered=entered, size=size, last_contact=now, last_probe=now
        )

    def began(self, key: str, phase: Phase, now: float) -> None:
        """The service began `key`'s `phase` only now, after it was tracked (Recuro: the original's
        fetch, which the upload seal holds until the answer is recorded). Predictions and the learned
        durations then run from here, not from a moment that includes our own delays."""
        waiting = self._items.get(key)
        if waiting is not None and waiting.phase is phase and waiting.entered < now:
            waiting.entered = now
            waiting.predicted = None

    def untrack(self, key: str) -> None:
        """`key` no longer waits (finished, failed, or left the batch)."""
        self._forget(key)

    def _forget(self, key: str) -> None:
        waiting = self._items.pop(key, None)
        if waiting is not None and waiting.speculating:
            self._speculation.answered(hit=None)

    def expected_duration(self, key: str) -> float | None:
        """How long the item's current phase is expected to take in total (None if nothing is known)."""
        waiting = self._items.get(key)
        if waiting is None:
            return None
        return self._expected(waiting)

    def observe(
        self, key: str, status: RemoteStatus, now: float, *, callback: bool = False
    ) -> None:
        """An observation of `key`: a contact's answer, or news the service sent (`callback`)."""
        waiting = self._items.get(key)
        if waiting is None:
            return
        if status.phase not in PHASE_ENDS[waiting.phase] | {waiting.phase, Phase.UNKNOWN}:
            return  # stale news of an earlier phase (a late callback): the item still waits
        if status.phase in PHASE_ENDS[waiting.phase]:
            self._reports[waiting.phase].append(callback)
        if waiting.contacted and status.phase is not Phase.UNKNOWN:
            hit = status.phase is not waiting.phase
            # a prediction tested (a backoff contact predicts nothing); a contact made before its
            # target that finds the item done says a contact at the target would have hit too
            if waiting.on_target or (hit and self._expected(waiting) is not None):
                self._speculation.score(hit=hit)
                if waiting.by_model:  # the item's own progress is not the learned durations' fault
                    self._models[waiting.phase].steer(hit=hit)
            if not hit:
                waiting.seen_waiting = waiting.asked_at
            waiting.contacted = False
            if waiting.speculating:
                waiting.speculating = False
                self._speculation.answered(hit=hit)
        if status.phase in (waiting.phase, Phase.UNKNOWN):
            waiting.contacts += 1
            waiting.last_contact = waiting.last_probe = now
            fraction = status.fraction if status.phase is waiting.phase else None
            if fraction is not None and fraction > 0 and now > waiting.entered:
                # the item's own progress rate: fraction done per second since the phase began
                total = (now - waiting.entered) / min(fraction, 1.0)
                waiting.predicted = waiting.entered + total
            elif waiting.predicted is not None and self._target(waiting) <= now:
                waiting.predicted = None  # proved wrong; fall back to the model or backoff
            return
        if status.phase in (Phase.READY, Phase.RUNNING, Phase.RESTORED):
            # the phase is over: learn how long it took. A callback says when; a contact only that it
            # ended after the last contact that found it waiting (count the middle) and before now
            finished = now
            if not callback and waiting.seen_waiting is not None:
                finished = (max(waiting.seen_waiting, waiting.entered) + now) / 2
            self._models[waiting.phase].add(waiting.size, finished - waiting.entered)
        self._forget(key)

    def observe_sweep(self, now: float, restored: Iterable[str]) -> None:
        """A sweep at `now` showed the keys in `restored` done; the other swept items are not."""
        # the sweep before this one (plan() already recorded this one when it asked for it)
        previous = self._prev_sweep if self._last_sweep == now else self._last_sweep
        self._prev_sweep, self._last_sweep = previous, now
        done = set(restored)
        for key, waiting in list(self._items.items()):
            if waiting.phase not in self._sweep_phases:
                continue
            if key in done:
                # it finished between the previous sweep and this one: count the middle
                finished = now
                if previous is not None and previous > waiting.entered:
                    finished = (previous + now) / 2
                self._models[waiting.phase].add(waiting.size, finished - waiting.entered)
                self._forget(key)
                continue
            if self._target(waiting) <= now:
                waiting.contacts += 1  # due but not done: back off from here
                waiting.predicted = None
            waiting.last_contact = max(waiting.last_contact, now)

    def unanswered(self, key: str) -> None:
        """The contact handed out for `key` was not made or got no answer: it may be planned again."""
        waiting = self._items.get(key)
        if waiting is not None and waiting.contacted and not waiting.speculating:
            waiting.contacted = False

    def speculate(self, key: str, *, refusal_cost: int) -> bool:
        """Whether the contact just handed out for `key` may be the next step itself (see the docstring)."""
        waiting = self._items.get(key)
        if waiting is not None and waiting.speculating:
            return True  # the step is still to be taken (not answered yet)
        if waiting is None or not (waiting.contacted and waiting.on_target):
            return False
        waiting.speculating = self._speculation.grant(refusal_cost)
        return waiting.speculating

    # ------------------------------------------------------------------ what to do

    def plan(
        self, now: float, *, max_probes: int = 8, may_sweep: bool = True, refusal_cost: int = 2
    ) -> Plan:
        """What to ask at `now`: sweep or not, which items to probe, and when to plan again.

        The sweep and probes returned are taken as sent at `now` (they are not planned again until
        their answer or `min_interval`). `may_sweep=False` while a sweep is still queued or on the
        wire: its answer will tell what a second one would. While speculation is earned (`refusal_cost`
        as in `speculate`), an item due on target beyond the slow-start window waits for a speculative
        contact to be answered (the caller plans again then) instead of costing a probe.
        """
        s = self._settings
        if not self._items:
            return Plan(sweep=False, probes=(), wake_at=None)
        self._scouts = {}
        for waiting in self._items.values():
            scout = self._scouts.get(waiting.phase)
            if scout is None or waiting.entered < scout.entered:
                self._scouts[waiting.phase] = waiting
        self._verdicts = {phase: self._reported(phase) for phase in _WAITING}
        sweep_due = self._sweep_due() if may_sweep else None
        sweep = sweep_due is not None and sweep_due <= now
        due: list[tuple[float, str]] = []
        wake = math.inf if sweep_due is None or sweep else sweep_due
        room = self._speculation.room(refusal_cost)
        for key, waiting in self._items.items():
            at = self._probe_due(waiting)
            if waiting.contacted:
                # its answer is still to come (latency may exceed min_interval): asking again would
                # only repeat the question; a lost answer is asked again after max_interval
                at = max(at, waiting.last_probe + s.max_interval)
            if at > now:
                wake = min(wake, at)
            elif room is None or not self._may_speculate(waiting, now):
                due.append((at, key))
            elif room > 0:
                room -= 1
                due.append((at, key))
        due.sort()
        probes = tuple(key for _, key in due[: max(max_probes, 0)])
        for key in probes:
            waiting = self._items[key]
            waiting.on_target = self._expected(waiting) is not None and self._target(waiting) <= now
            waiting.by_model = waiting.predicted is None
            waiting.last_contact = waiting.last_probe = waiting.asked_at = now
            waiting.contacted = True
        if len(due) > len(probes):
            wake = min(wake, due[len(probes)][0])
        if sweep:
            self._prev_sweep, self._last_sweep = self._last_sweep, now
            wake = min(wake, now + s.min_interval)
        return Plan(sweep=sweep, probes=probes, wake_at=None if math.isinf(wake) else wake)

    def _may_speculate(self, waiting: _Waiting, now: float) -> bool:
        """True when a contact now could be the next step itself (on target, in that phase)."""
        return (
            waiting.phase is self._speculative_phase
            and not waiting.speculating
            and self._target(waiting) <= now
        )

    def _sweep_due(self) -> float | None:
        s = self._settings
        swept = [w for w in self._items.values() if w.phase in self._sweep_phases]
        if not swept:
            return None
        first = min(w.entered for w in swept)
        last = (
            self._last_sweep if self._last_sweep is not None and self._last_sweep >= first else None
        )
        if s.webhook and all(self._verdicts[phase] for phase in {w.phase for w in swept}):
            # callbacks report the swept phases: a sweep only reconciles, now and then
            return (last if last is not None else first) + s.reconcile_interval
        # a sweep serves the whole batch: it is due once it will collect a share of the batch's width
        # (or every item still in sight), or once the earliest has waited `lag` past its prediction,
        # whichever comes first; and sweeps are `spacing` apart, a small fraction of the typical
        # duration (a sweep sooner would mostly find what the next one finds, a little later). In the
        # bulk, finding an item a little later costs nothing; in the tail, it is the batch's own time
        typical = [
            d for d in (self._models[p].expect(None) for p in self._sweep_phases) if d is not None
        ]
        spacing = s.min_interval
        if typical:
            spacing = max(typical) * s.sweep_fraction
            if len(swept) <= _SWEEP_BATCH and len(swept) == len(self._items):
                # the tail: nothing waits behind these few, and one of them ends the batch, so its
                # detection lag is the batch's own: sweep twice as often
                spacing /= 2
            spacing = min(max(spacing, s.min_interval), s.max_interval)
        # while nothing is known about the phase, only its oldest item paces the sweeps (backing off):
        # every item that enters it would otherwise ask for a sweep of its own
        targets = sorted(self._sweep_target(w, spacing) for w in swept if self._known_or_scout(w))
        base = last if last is not None else first
        self._peak_swept = max(self._peak_swept, len(swept))
        share = max(_SWEEP_BATCH, math.ceil(self._peak_swept * _SWEEP_SHARE))
        lag = spacing
        if typical and len(swept) > share:
            lag = min(max(max(typical) * _SWEEP_LAG, spacing), s.max_interval)
        due = min(targets[min(share, len(targets)) - 1], targets[0] + lag)
        return min(max(due, base + spacing), base + self._cold_spacing(swept, s.max_interval))

    def _cold_spacing(self, swept: list[_Waiting], spacing: float) -> float:
        """The longest time between sweeps: `spacing`, or shorter while a phase has no completions yet.

        Then only the scout's own progress predicts anything, and other items, shorter ones, may end
        well before it: sweep every `_COLD_FRACTION` of the scout's expected duration, so the first
        completions (which teach the model) are seen when they happen.
        """
        s = self._settings
        for phase in {w.phase for w in swept}:
            scout = self._scouts.get(phase)
            if scout is None or self._models[phase].expect(None) is not None:
                continue
            expected = self._expected(scout)
            if expected is not None and sum(1 for w in swept if w.phase is phase) > 1:
                spacing = min(spacing, max(expected * _COLD_FRACTION, s.min_interval))
        return spacing

    def _known_or_scout(self, waiting: _Waiting) -> bool:
        known = (
            waiting.predicted is not None or self._models[waiting.phase].expect(None) is not None
        )
        return known or self._scouts.get(waiting.phase) is waiting

    def _probe_due(self, waiting: _Waiting) -> float:
        s = self._settings
        reported = self._verdicts[waiting.phase]
        # callbacks asked for but none of the phase's completions seen yet: its oldest item is asked
        # at its predictions (backing off), and what it finds says whether the callbacks come
        verifying = (
            s.webhook
            and not self._reports[waiting.phase]
            and self._scouts.get(waiting.phase) is waiting
        )
        if verifying or (waiting.phase not in self._sweep_phases and not reported):
            if (
                waiting.predicted is None
                and self._models[waiting.phase].expect(None) is None
                and self._scouts.get(waiting.phase, waiting) is not waiting
            ):
                # nothing known about this phase yet: only its oldest item probes (backing off);
                # the first completion teaches the model, and the others are predicted from it
                return waiting.last_contact + s.max_interval
            at = self._target(waiting)
            return min(
                max(at, waiting.last_contact + s.min_interval),
                waiting.last_contact + s.max_interval,
            )
        # a swept phase, or one callbacks report: probe only when overdue (a failure never shows in a
        # sweep, a callback may be lost); while nothing is known about it, only the oldest item keeps
        # in touch (a failed one passes the role on), and what it finds says whether callbacks come
        unknown = waiting.last_probe + s.reconcile_interval if s.webhook else math.inf
        if not self._known_or_scout(waiting):
            return unknown
        expected = self._expected(waiting)
        if waiting.predicted is None and len(self._models[waiting.phase].samples) < _MATURE:
            # one or two completions (the smallest items, often) say little about the others' times
            if self._scouts.get(waiting.phase) is not waiting:
                return unknown
            expected = None
        factor = s.overdue_factor
        if reported:
            # later than every item seen so far, by a margin: most likely its callback was lost
            spread = self._models[waiting.phase].spread()
            factor = min(factor, max(_REPORTED_OVERDUE, spread * _REPORTED_OVERDUE_SPREAD))
        overdue = (
            waiting.entered + expected * factor + s.min_interval
            if expected is not None
            else waiting.last_probe + s.max_interval
        )
        return max(overdue, waiting.last_probe + s.max_interval / 2)

    def _reported(self, phase: Phase) -> bool:
        """Callbacks report most completions of `phase` (the upload's notify_url, say): no need to ask.

        Before any completion, webhook mode (callbacks asked for every step) assumes they do, unless
        another phase's completions came without them; what the phase's own completions show decides
        from then on, so a service that never calls back is polled.
        """
        reports = self._reports[phase]
        if not reports:
            return self._settings.webhook and all(map(_mostly_called_back, self._reports.values()))
        return _mostly_called_back(reports)

    def _sweep_target(self, waiting: _Waiting, spacing: float) -> float:
        """When a sweep should look for the item: its predicted completion without the margin (a sweep
        that looks too early costs one request for the whole batch, not one per item). A late item is
        looked for again after a quarter of how late it already is, at least `spacing`: soon while a
        slow draw is likely, less often as a failure (which a sweep never shows) becomes likelier."""
        expected = self._expected(waiting)
        if expected is None:
            return self._target(waiting)
        end = waiting.entered + expected
        if end > waiting.last_contact:
            return end
        return waiting.last_contact + max(spacing, (waiting.last_contact - end) / 4)

    def _target(self, waiting: _Waiting) -> float:
        """When the item is predicted done (plus margin), or its backoff time when nothing is known."""
        s = self._settings
        if waiting.predicted is not None:
            return waiting.entered + (waiting.predicted - waiting.entered) * (1 + s.margin)
        expected = self._models[waiting.phase].expect(waiting.size)
        if expected is not None:
            at = waiting.entered + expected * (1 + self._models[waiting.phase].margin)
            if at > waiting.last_contact:
                return at
        backoff = min(s.min_interval * 2.0**waiting.contacts, s.max_interval)
        return waiting.last_contact + backoff

    def _expected(self, waiting: _Waiting) -> float | None:
        if waiting.predicted is not None:
            return waiting.predicted - waiting.entered
        return self._models[waiting.phase].expect(waiting.size)


def _mostly_called_back(reports: collections.deque[bool]) -> bool:
    """At least `_REPORTED_SHARE` of these completions were reported by a callback (none: vacuously)."""
    return sum(reports) >= _REPORTED_SHARE * len(reports)
