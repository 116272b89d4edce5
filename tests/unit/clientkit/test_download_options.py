"""`DownloadOptions` on its own: bad values are refused on construction, naming the field and what it allows."""

from __future__ import annotations

import math

import pytest

from _clientkit._download_options import DownloadOptions

COUNTS = {
    "max_retries": 0,
    "chunk_size": 1,
    "segments": 1,
    "min_segment_size": 1,
    "max_redirects": 0,
}
SECONDS = ["backoff_base", "backoff_cap", "max_retry_after", "progress_interval"]
TIMEOUTS = ["timeout", "deadline"]


def test_the_defaults():
    """The documented defaults: 5 retries, 1 MiB chunks, one connection, 8 MiB segments, fsync on."""
    options = DownloadOptions()
    assert (options.max_retries, options.chunk_size, options.segments) == (5, 1024 * 1024, 1)
    assert (options.min_segment_size, options.max_redirects) == (8 * 1024 * 1024, 10)
    assert (options.backoff_base, options.backoff_cap, options.max_retry_after) == (
        0.5,
        30.0,
        120.0,
    )
    assert (options.timeout, options.deadline, options.progress_interval) == (60.0, None, 1.0)
    assert (options.fsync, options.follow_redirects, options.direct_read) == (True, True, True)


@pytest.mark.parametrize(("field", "minimum"), COUNTS.items())
def test_a_count_at_its_minimum_is_accepted(field, minimum):
    """The smallest allowed value of each count is accepted as given."""
    assert getattr(DownloadOptions(**{field: minimum}), field) == minimum


@pytest.mark.parametrize(("field", "minimum"), COUNTS.items())
@pytest.mark.parametrize("offset", [-1, -100])
def test_a_count_below_its_minimum_is_refused(field, minimum, offset):
    """Below the minimum: ValueError naming the field, the bound and the value."""
    value = minimum + offset
    with pytest.raises(
        ValueError, match=rf"^{field} must be an integer >= {minimum}, got {value}$"
    ):
        DownloadOptions(**{field: value})


@pytest.mark.parametrize("field", COUNTS)
@pytest.mark.parametrize("value", [True, False, 2.0, "3", None])
def test_a_count_that_is_not_an_integer_is_refused(field, value):
    """A bool, a float, a string or None is not a count, even when it would compare as one."""
    with pytest.raises(ValueError, match=rf"^{field} must be an integer >= "):
        DownloadOptions(**{field: value})


@pytest.mark.parametrize("field", SECONDS)
@pytest.mark.parametrize("value", [0, 0.0, 2, 2.5])
def test_seconds_at_or_above_zero_are_accepted(field, value):
    """Durations may be zero (no backoff, report on every write) or any finite positive number."""
    assert getattr(DownloadOptions(**{field: value}), field) == value


@pytest.mark.parametrize("field", SECONDS)
@pytest.mark.parametrize("value", [-0.001, -1, math.inf, math.nan, "1", None])
def test_seconds_negative_infinite_or_not_numbers_are_refused(field, value):
    """A negative, infinite, NaN or non-number duration: ValueError naming the field."""
    with pytest.raises(ValueError, match=rf"^{field} must be a finite number >= 0, got "):
        DownloadOptions(**{field: value})


@pytest.mark.parametrize("field", TIMEOUTS)
@pytest.mark.parametrize("value", [None, 0.001, 1, 30.5])
def test_a_timeout_is_none_or_positive(field, value):
    """None means no limit; otherwise any finite positive number."""
    assert getattr(DownloadOptions(**{field: value}), field) == value


@pytest.mark.parametrize("field", TIMEOUTS)
@pytest.mark.parametrize("value", [0, 0.0, -1, math.inf, math.nan, "5"])
def test_a_timeout_that_is_zero_negative_infinite_or_not_a_number_is_refused(field, value):
    """Zero would fail every request at once; infinity is spelled None."""
    with pytest.raises(ValueError, match=rf"^{field} must be a number > 0 or None, got "):
        DownloadOptions(**{field: value})


def test_the_message_shows_the_refused_value():
    """The value itself is in the message (repr), so a caller sees what it passed."""
    with pytest.raises(ValueError, match=r"got '3'$"):
        DownloadOptions(segments="3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"got -1$"):
        DownloadOptions(timeout=-1)
