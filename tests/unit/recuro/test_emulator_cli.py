"""`recuro emulator` argument handling: bad values and a busy port exit 2 without serving."""

from __future__ import annotations

import socket

import pytest

from recuro_async.testing import emulator_main


@pytest.mark.parametrize(
    "argv",
    [
        ["--time-scale", "0"],
        ["--fault-rate", "2"],
        ["--max-concurrent-jobs", "0"],
        ["--restored-url-ttl", "0"],
    ],
    ids=["time-scale", "fault-rate", "jobs", "restored-url-ttl"],
)
def test_invalid_values_exit_2(argv, capsys):
    """An out-of-range option is reported on stderr with exit code 2 and nothing on stdout."""
    assert emulator_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "recuro emulator:" in err


def test_busy_port_exits_2(capsys):
    """A port already in use is reported with exit code 2, not a traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert emulator_main(["--port", str(busy.getsockname()[1])]) == 2
    assert "cannot serve" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error():
    """argparse refuses unknown options with exit code 2."""
    with pytest.raises(SystemExit) as info:
        emulator_main(["--nope"])
    assert info.value.code == 2
