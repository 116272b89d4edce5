"""Print each module's mutation score from mutmut's result files in ./mutants (after `mutmut run`).

Score = killed / (killed + survived): a timeout counts as killed (as mutmut counts it), a mutant that no
test covers as a survivor; mutants not (yet) checked are left out and reported. Survivors whose only
change is the letter case of a string are listed apart ("case-only"): in these modules such strings are
SQL, sqlite3.Row keys or HTTP header names, all case-insensitive, so those mutants are equivalent (each
module's entry in tests/MUTATION.md says so or explains otherwise); the second score leaves them out.
Usage: python3 tests/mutation/score.py [module ...]   (module as `_clientkit._ranges`)
"""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {
    1,
    3,
    36,
    37,
    -24,
    24,
    152,
    255,
}  # a failing test, an internal error, a timeout, a type error
SURVIVED = {0, 5, 33}  # no test failed, or no test covers the mutated function


def _bodies(source: str) -> dict[str, str]:
    """Every function's body source, by name (mutmut names each mutant as a function)."""
    lines = source.splitlines()
    bodies = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            first = node.body[0].lineno - 1  # the body only: the mutant's name differs
            bodies[node.name] = "\n".join(lines[first : node.end_lineno])
    return bodies


def _case_only(name: str, bodies: dict[str, str]) -> bool:
    function = name.rsplit(".", 1)[-1]
    original = function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    mutated, orig = bodies.get(function), bodies.get(original)
    return mutated is not None and orig is not None and mutated.lower() == orig.lower()


def main(modules: list[str]) -> int:
    root = Path("mutants")
    found = False
    for meta in sorted(root.rglob("*.py.meta")):
        module = ".".join(meta.relative_to(root).with_suffix("").with_suffix("").parts)
        if modules and module not in modules:
            continue
        found = True
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        bodies = _bodies(meta.with_suffix("").read_text())
        counts = Counter(
            "killed"
            if c in KILLED
            else "survived"
            if c in SURVIVED
            else "unchecked"
            if c is None
            else "other"
            for c in codes.values()
        )
        survivors = sorted(k for k, c in codes.items() if c in SURVIVED)
        case_only = [k for k in survivors if _case_only(k, bodies)]
        judged = counts["killed"] + counts["survived"]
        score = 100.0 * counts["killed"] / judged if judged else 0.0
        strict = judged - len(case_only)
        without_case = 100.0 * counts["killed"] / strict if strict else 0.0
        print(  # noqa: T201 - a command-line report
            f"{module}: {score:.1f}% ({counts['killed']} killed / {judged} judged; "
            f"{without_case:.1f}% without {len(case_only)} case-only survivors; "
            f"{counts['unchecked']} not checked, {counts['other']} other)"
        )
        for name in survivors:
            tag = "case-only" if name in case_only else "survived"
            print(f"    {tag}: {name}")  # noqa: T201
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
