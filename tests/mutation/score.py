"""Print each module's mutation score from mutmut's result files in ./mutants (after `mutmut run`).

Score = killed / (killed + survived); a timeout counts as killed (as mutmut counts it), a mutant
that no test covers as a survivor; mutants not (yet) checked are left out and reported.
Usage: python3 tests/mutation/score.py [module ...]   (module as `_clientkit._ranges`)
"""

from __future__ import annotations

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


def main(modules: list[str]) -> int:
    root = Path("mutants")
    rows = []
    for meta in sorted(root.rglob("*.py.meta")):
        module = ".".join(meta.relative_to(root).with_suffix("").with_suffix("").parts)
        if modules and module not in modules:
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
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
        judged = counts["killed"] + counts["survived"]
        score = 100.0 * counts["killed"] / judged if judged else 0.0
        rows.append((module, len(codes), counts, score))
        survivors = sorted(k for k, c in codes.items() if c in SURVIVED)
        print(  # noqa: T201 - a command-line report
            f"{module}: {score:.1f}% ({counts['killed']} killed / {judged} judged, "
            f"{counts['unchecked']} not checked, {counts['other']} other)"
        )
        for name in survivors:
            print(f"    survived: {name}")  # noqa: T201
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
