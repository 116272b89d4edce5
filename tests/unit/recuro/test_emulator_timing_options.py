"""The emulator's `jitter` and `fetch_timing` options (issue 14): validation, the CLI flags, the draws."""

from __future__ import annotations

import pytest

from recuro_async.testing import EmulatorConfig, emulator_main
from recuro_async.testing._cli import _parser
from recuro_async.testing._lifecycle import jitter_factor


def test_defaults_keep_todays_behaviour():
    """No jitter and the fetch after the answer, unless asked."""
    config = EmulatorConfig()
    assert (config.jitter, config.fetch_timing) == (0.0, "after-answer")
    assert jitter_factor(0.0, 7, "ids-1.mov", "analysis") == 1.0


def test_factors_lie_in_the_range_and_depend_only_on_seed_and_what_is_timed():
    """Each factor is within [1-F, 1+F], spreads over it, and is the same whenever it is drawn again."""
    draws = [jitter_factor(0.3, 7, f"ids-{n}.mov", "analysis") for n in range(300)]
    assert all(0.7 <= d <= 1.3 for d in draws)
    assert min(draws) < 0.75
    assert max(draws) > 1.25
    assert [jitter_factor(0.3, 7, f"ids-{n}.mov", "analysis") for n in range(300)] == draws
    assert jitter_factor(0.3, 8, "ids-1.mov", "analysis") != draws[1]
    assert jitter_factor(0.3, 7, "ids-1.mov", "job", 1) != draws[1]
    assert jitter_factor(0.3, 7, "ids-1.mov", "job", 2) != jitter_factor(
        0.3, 7, "ids-1.mov", "job", 1
    )


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan")])
def test_jitter_out_of_range_is_refused_naming_the_field_and_the_range(value):
    with pytest.raises(ValueError, match=r"jitter must be >= 0 and < 1"):
        EmulatorConfig(jitter=value)


def test_an_unknown_fetch_timing_is_refused_naming_the_allowed_values():
    with pytest.raises(ValueError, match="fetch_timing must be 'after-answer' or 'before-answer'"):
        EmulatorConfig(fetch_timing="during-answer")  # type: ignore[arg-type]


def test_cli_flags_parse():
    """`--jitter F` and `--fetch-timing` reach the parsed arguments; the defaults are today's."""
    args = _parser().parse_args(["--jitter", "0.3", "--fetch-timing", "before-answer"])
    assert (args.jitter, args.fetch_timing) == (0.3, "before-answer")
    default = _parser().parse_args([])
    assert (default.jitter, default.fetch_timing) == (0.0, "after-answer")


def test_cli_refuses_a_jitter_of_one_before_serving(capsys):
    """An out-of-range --jitter exits 2 with the field and its range on stderr, nothing on stdout."""
    assert emulator_main(["--jitter", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "jitter must be >= 0 and < 1" in err


def test_cli_refuses_an_unknown_fetch_timing(capsys):
    """argparse names the allowed values."""
    with pytest.raises(SystemExit) as exit_:
        emulator_main(["--fetch-timing", "later"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--fetch-timing" in err
    assert "'after-answer', 'before-answer'" in err
