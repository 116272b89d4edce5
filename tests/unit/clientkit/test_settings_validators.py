"""Settings classes check their values with attrs' own bounds: a bad value raises a ValueError naming the
field and what it allows, at construction (before any request)."""

from __future__ import annotations

import math

import pytest

from _clientkit._limiter import Pacing
from _clientkit._retry import RetryPolicy
from recuro_async import RateLimit

# (class, the other fields, field, bad value, what the message names)
CASES = [
    (RateLimit, {}, "max_requests", 0, ">= 1"),
    (RateLimit, {}, "max_requests", True, "an int"),
    (RateLimit, {}, "max_requests", 2.5, "an int"),
    (RateLimit, {}, "period", 0, "> 0"),
    (RateLimit, {}, "period", math.inf, "inf"),
    (RateLimit, {}, "period", math.nan, "> 0"),
    (RateLimit, {}, "period", "60", "a number"),
    (RetryPolicy, {}, "max_retries", -1, ">= 0"),
    (RetryPolicy, {}, "max_retries", False, "an int"),
    (RetryPolicy, {}, "base", -0.1, ">= 0"),
    (RetryPolicy, {}, "cap", math.inf, "inf"),
    (RetryPolicy, {}, "max_retry_after", None, "a number"),
    (Pacing, {"burst": 1}, "rate", 0.0, "> 0"),
    (Pacing, {"burst": 1}, "rate", math.inf, "inf"),
    (Pacing, {"rate": 1.0}, "burst", 0, ">= 1"),
    (Pacing, {"rate": 1.0}, "burst", True, "an int"),
]


@pytest.mark.parametrize(
    ("cls", "others", "field", "value", "allowed"),
    CASES,
    ids=[f"{c[0].__name__}.{c[2]}={c[3]!r}" for c in CASES],
)
def test_a_bad_setting_names_the_field_and_what_it_allows(cls, others, field, value, allowed):
    """The ValueError names the field and the allowed values (a type or a bound)."""
    with pytest.raises(ValueError, match=field) as info:
        cls(**others, **{field: value})
    assert allowed in str(info.value)


def test_good_settings_are_kept():
    """Ints where floats are allowed, and the bounds themselves, are accepted."""
    assert RateLimit(max_requests=1, period=1).period == 1
    assert RetryPolicy(max_retries=0, base=0, cap=0).max_retries == 0
    assert Pacing(rate=1, burst=1).burst == 1
