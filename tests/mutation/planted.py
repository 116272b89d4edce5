"""Plant, one at a time, each bug class issue 17 lists, and check that the fast tests catch it.

Independent of mutmut: these are the hand-made bugs the issue saw go unnoticed (a revealing `str()`, a
chunked body trusted by its Content-Length, a sidecar of another URL resumed, a failed journal operation
committed, DOWNLOADED -> QUEUED allowed...). Each is applied to a scratch copy of the project, only the
unit and property tests of its module run (no integration or reliability suite), and the bug counts as
caught when they fail. Usage: python3 tests/mutation/planted.py   (about three minutes; exit 1 if any
bug goes unnoticed)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("_clientkit", "orchestrator", "recuro_async", "mediacrush_async")
CK = "tests/unit/clientkit/"
OR = "tests/unit/orchestrator/"
REDACT = (f"{CK}test_redact_unit.py",)
RANGES = (f"{CK}test_ranges_unit.py", f"{CK}test_download_wire_edges.py")
PARTFILE = (f"{CK}test_partfile_unit.py",)
STAGES = (f"{OR}test_stages.py", f"{OR}test_stage_table.py")
JOURNAL = (f"{OR}test_journal.py", f"{OR}test_journal_guards.py", f"{OR}test_journal_unit.py")
RECONCILE = (f"{OR}test_reconcile.py",)

# (what the bug is, file, text replaced, replacement, tests that must catch it)
BUGS: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    (
        "str() reveals a Secret",
        "_clientkit/_redact.py",
        "    __str__ = __repr__\n",
        "    def __str__(self) -> str:\n        return self._value\n",
        REDACT,
    ),
    (
        "an f-string reveals a Secret",
        "_clientkit/_redact.py",
        "    def __format__(self, spec: str) -> str:\n        return repr(self)",
        "    def __format__(self, spec: str) -> str:\n        return self._value",
        REDACT,
    ),
    (
        "repr leaks the first characters",
        "_clientkit/_redact.py",
        "        return \"Secret('***')\"",
        "        return f\"Secret('{self._value[:3]}***')\"",
        REDACT,
    ),
    (
        "redact_text masks only the first occurrence",
        "_clientkit/_redact.py",
        "text = _pattern(secret).sub(MASK, text)",
        "text = _pattern(secret).sub(MASK, text, count=1)",
        REDACT,
    ),
    (
        "header masking is case-sensitive",
        "_clientkit/_redact.py",
        "if k.lower() in SENSITIVE_HEADERS",
        "if k in SENSITIVE_HEADERS",
        REDACT,
    ),
    (
        "header masking forgets Proxy-Authorization",
        "_clientkit/_redact.py",
        '"proxy-authorization", ',
        "",
        REDACT,
    ),
    (
        "Content-Length trusted on a chunked response",
        "_clientkit/_ranges.py",
        'if value is None or "transfer-encoding" in headers:',
        "if value is None:",
        RANGES,
    ),
    (
        "a Last-Modified in the same second as Date is strong",
        "_clientkit/_ranges.py",
        "if (served - when).total_seconds() < 1:",
        "if (served - when).total_seconds() < 0:",
        RANGES,
    ),
    (
        "a one-byte range refused",
        "_clientkit/_ranges.py",
        "if last < first or",
        "if last <= first or",
        RANGES,
    ),
    (
        "a unit other than bytes accepted",
        "_clientkit/_ranges.py",
        '_CONTENT_RANGE: Final = re.compile(r"(?i:bytes) ',
        '_CONTENT_RANGE: Final = re.compile(r"(?i:[a-z]+) ',
        RANGES,
    ),
    (
        "a Content-Range whose last byte equals the total accepted",
        "_clientkit/_ranges.py",
        "(total is not None and last >= total)",
        "(total is not None and last > total)",
        RANGES,
    ),
    (
        "a 416 total read without its '*'",
        "_clientkit/_ranges.py",
        '_UNSATISFIED: Final = re.compile(r"(?i:bytes) \\*/([0-9]+)")',
        '_UNSATISFIED: Final = re.compile(r"(?i:bytes) (?:\\*|[0-9]+-[0-9]+)/([0-9]+)")',
        RANGES,
    ),
    (
        "a sidecar of another URL resumed",
        "_clientkit/_partfile.py",
        'if data["url"] != url:',
        "if False:",
        PARTFILE,
    ),
    (
        "a short pwritev whose offset is not advanced",
        "_clientkit/_partfile.py",
        "written = _progress(os.pwritev(fd, batch, offset))\n            offset += written",
        "written = _progress(os.pwritev(fd, batch, offset))\n            offset += 0",
        PARTFILE,
    ),
    (
        "O_NOFOLLOW dropped",
        "_clientkit/_partfile.py",
        "flags = os.O_RDWR | os.O_CREAT | _BINARY | _NO_FOLLOW",
        "flags = os.O_RDWR | os.O_CREAT | _BINARY",
        PARTFILE,
    ),
    (
        "a sidecar of another version accepted",
        "_clientkit/_partfile.py",
        'if data["version"] != SIDECAR_VERSION:',
        "if False:",
        PARTFILE,
    ),
    (
        "segments that do not tile the file accepted",
        "_clientkit/_partfile.py",
        "if not tiles(segments, total):",
        "if False:",
        PARTFILE,
    ),
    (
        "the sidecar written in place",
        "_clientkit/_partfile.py",
        'tmp = path.with_name(f"{path.name}.tmp")',
        "tmp = path",
        PARTFILE,
    ),
    (
        "the .part renamed without its fsync",
        "_clientkit/_partfile.py",
        "        if fsync:\n            os.fsync(fd)\n    finally:",
        "        pass\n    finally:",
        PARTFILE,
    ),
    (
        "a failed journal operation's partial writes committed (savepoint rollback removed)",
        "orchestrator/_journal.py",
        'conn.execute("ROLLBACK TO op")',
        "pass",
        JOURNAL,
    ),
    (
        "a save cancelled while waiting committed later (shield removed)",
        "orchestrator/_journal.py",
        "        with anyio.CancelScope(shield=True):\n            async with self._lock:",
        "        with anyio.CancelScope(shield=False):\n            async with self._lock:",
        JOURNAL,
    ),
    (
        "DOWNLOADED -> QUEUED allowed",
        "orchestrator/_stages.py",
        "_S.DOWNLOADED: frozenset({_S.DONE}),",
        "_S.DOWNLOADED: frozenset({_S.DONE, _S.QUEUED}),",
        STAGES,
    ),
    (
        "media adopted when two uploads are open and one candidate appears",
        "orchestrator/_reconcile.py",
        "    if len(items) == 1 and len(candidates) == 1:\n",
        "    if len(candidates) == 1:\n",
        RECONCILE,
    ),
]


def _scratch() -> Path:
    where = Path(tempfile.mkdtemp(prefix="planted-"))
    for name in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / name, where / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", where / "pyproject.toml")
    return where


def main() -> int:
    where = _scratch()
    env = {**os.environ, "PYTHONPATH": str(where)}
    missed = []
    try:
        for what, file, old, new, tests in BUGS:
            path = where / file
            original = path.read_text()
            if original.count(old) != 1:
                print(f"CANNOT PLANT  {what}: the text to replace is not found once in {file}")  # noqa: T201
                missed.append(what)
                continue
            path.write_text(original.replace(old, new))
            try:
                result = subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", *tests],
                    cwd=where,
                    env=env,
                    capture_output=True,
                    check=False,
                    timeout=600,
                )
            finally:
                path.write_text(original)
            caught = result.returncode == 1
            print(f"{'caught' if caught else 'MISSED'}  {what}")  # noqa: T201
            if not caught:
                missed.append(what)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    print(f"{len(BUGS) - len(missed)} of {len(BUGS)} planted bugs caught")  # noqa: T201
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
