"""`python3 -m benchmarks` rewrites the committed RESULTS.md only when asked to (issue 12, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import LATEST, RESULTS, destination, main


@pytest.mark.parametrize(
    "argv",
    [["--quick"], ["--only", "B3"], ["--quick", "--only", "B2,B3"], []],
    ids=["quick", "partial", "quick-partial", "full"],
)
def test_a_run_without_the_flag_never_writes_results_md(argv):
    """Smoke runs, partial runs and even a full run go to a scratch file, not the committed one."""
    assert destination(argv) == LATEST
    assert LATEST != RESULTS


def test_a_full_run_with_the_flag_rewrites_results_md():
    """`--update-results` on a full run is the one way to rewrite benchmarks/RESULTS.md."""
    assert destination(["--update-results"]) == RESULTS
    assert RESULTS.name == "RESULTS.md"


def test_an_explicit_out_path_wins(tmp_path):
    """`--out PATH` writes there."""
    assert destination(["--quick", "--out", str(tmp_path / "r.md")]) == tmp_path / "r.md"


@pytest.mark.parametrize(
    "argv",
    [
        ["--update-results", "--quick"],
        ["--update-results", "--only", "B3"],
        ["--update-results", "--out", "x.md"],
    ],
    ids=["quick", "partial", "out"],
)
def test_the_flag_refuses_anything_but_a_full_run(argv, capsys, tmp_path):
    """A quick or partial run cannot replace the numbers of record: exit 2 before running anything."""
    results_before = RESULTS.read_bytes()
    assert main([*argv, "--work", str(tmp_path)]) == 2
    assert "--update-results" in capsys.readouterr().err
    assert RESULTS.read_bytes() == results_before
    assert list(tmp_path.iterdir()) == []


def test_the_scratch_file_is_ignored_by_git():
    """The scratch results never show up as a change to commit."""
    ignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "benchmarks/RESULTS-latest.md" in ignore
