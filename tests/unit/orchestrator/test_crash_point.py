"""The crash hook's counting: every effect has a number, nested effects included, and bad settings fail."""

from __future__ import annotations

import os

import pytest

from orchestrator._effects import CRASH_EXIT, CrashPoint


def test_after_fires_for_the_effects_own_number_even_when_another_nested_inside(monkeypatch):
    """`after:1` ends the process after effect 1, although effect 2 began and ended inside it."""
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    point = CrashPoint.parse("after:1")
    outer = point.before("call")
    inner = point.before("save window")
    point.after(inner, "save window")
    assert exits == []
    point.after(outer, "call")
    assert exits == [CRASH_EXIT]


@pytest.mark.parametrize("text", ["before", "before:0", "after:x", "during:3", "before:-1"])
def test_a_bad_setting_is_refused_naming_the_variable(text):
    """Anything but before:N / after:N (N >= 1) is a ValueError naming ORCHESTRATOR_CRASH_AT."""
    with pytest.raises(ValueError, match="ORCHESTRATOR_CRASH_AT"):
        CrashPoint.parse(text)
