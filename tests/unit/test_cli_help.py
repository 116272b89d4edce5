"""Every command and option a user sees has help (issue 12, item 7): the argparse trees are walked.

A command needs a one-line help (shown in its parent's list), a description (shown by `COMMAND --help`) and
an example in its epilog; every argument and option needs a help string. The `emulator` commands are
checked through the emulators' own parsers, which receive their arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from mediacrush_async.testing._cli import _parser as mediacrush_emulator_parser
from orchestrator.cli.mediacrush import build_parser as mediacrush_parser
from orchestrator.cli.recuro import build_parser as recuro_parser
from recuro_async.testing._cli import _parser as recuro_emulator_parser

EMULATORS = {"recuro": recuro_emulator_parser, "mediacrush": mediacrush_emulator_parser}


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str | None, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand of `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name), sub


def _commands() -> Iterator[tuple[str, str | None, argparse.ArgumentParser]]:
    for program, build in (("recuro", recuro_parser), ("mediacrush", mediacrush_parser)):
        for name, one_line, sub in _subcommands(build()):
            real = EMULATORS[program]() if name == "emulator" else sub
            yield f"{program} {name}", one_line, real


COMMANDS = list(_commands())


def test_the_tree_has_every_command_the_spec_names():
    """The walk sees every command SPEC section 6 names (so the checks below cover them all)."""
    assert {name for name, _, _ in COMMANDS} >= {
        *(f"recuro {c}" for c in ("restore", "filters", "formats", "ls", "progress", "rm")),
        *(f"recuro {c}" for c in ("download", "demo", "emulator")),
        *(f"mediacrush {c}" for c in ("upload", "info", "status", "rm", "emulator", "demo")),
    }


@pytest.mark.parametrize(("name", "one_line", "parser"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_has_help_a_description_and_an_example(name, one_line, parser):
    """`COMMAND --help` says what it does and shows how to call it."""
    assert one_line, f"{name}: no one-line help in the command list"
    assert parser.description, f"{name}: no description"
    assert parser.epilog, f"{name}: no example"
    assert "example" in parser.epilog.lower(), f"{name}: the epilog shows no example"
    assert name.split()[0] in parser.epilog, f"{name}: the example does not show the command"


@pytest.mark.parametrize(("name", "one_line", "parser"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_argument_and_option_has_help(name, one_line, parser):
    """No option or positional argument is listed without saying what it is."""
    undocumented = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert undocumented == [], f"{name}: {undocumented} have no help"


@pytest.mark.parametrize("build", [recuro_parser, mediacrush_parser], ids=["recuro", "mediacrush"])
def test_top_level_help_lists_every_command_with_a_line(build):
    """`recuro --help` and `mediacrush --help` describe themselves and show an example."""
    parser = build()
    assert parser.description
    assert parser.epilog
    assert "example" in parser.epilog.lower()


@pytest.mark.parametrize(("name", "one_line", "parser"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_help_renders(name, one_line, parser):
    """`--help` renders (a % in a help string would make argparse raise)."""
    assert parser.prog.split()[-1] in parser.format_help() or name.endswith("emulator")


def test_a_closed_pipe_is_not_a_traceback(monkeypatch, capsys):
    """`recuro filters | head -1`: when the reader goes away, the command ends quietly (no traceback)."""
    import io
    import os

    from orchestrator.cli._main import dispatch

    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = io.TextIOWrapper(os.fdopen(write_end, "wb"), write_through=False)
    monkeypatch.setattr("sys.stdout", stdout)

    def handler(args: argparse.Namespace) -> int:
        for n in range(100_000):
            print(f"row {n}")  # noqa: T201 - the command prints, as `recuro ls` does
        return 0

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="recuro")
        parser.set_defaults(handler=handler)
        return parser

    try:
        assert dispatch([], build, lambda argv: 0) == 0
    finally:
        stdout.close()  # its descriptor now points at /dev/null
