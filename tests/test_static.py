"""ruff, mypy --strict and import-linter run inside the test command, so CI fails on any of them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.static


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)


def test_ruff_clean():
    """`ruff check` finds nothing in the repository."""
    result = _run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_clean():
    """`mypy --strict` (configured in pyproject.toml) passes on every package and the typing tests."""
    result = _run(sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers_hold():
    """import-linter's contracts (layers, independent emulators, `_clientkit` below the clients) hold."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = _run(exe, "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
