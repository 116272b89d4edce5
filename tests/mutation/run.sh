#!/usr/bin/env bash
# Mutation testing of the safety modules (issue 17); not part of CI (minutes of CPU per module).
#
#   tests/mutation/run.sh                      # every module named in [tool.mutmut] only_mutate
#   tests/mutation/run.sh _clientkit._ranges   # one module (or several)
#
# mutmut copies the packages and the tests into ./mutants/ and runs, against each mutant, only the fast
# unit and property tests listed in pyproject.toml ([tool.mutmut] pytest_add_cli_args_test_selection)
# that cover the mutated function. It runs niced, on at most 2 workers. Results: `mutmut results`,
# `mutmut show <name>`; the scores are recorded by hand in tests/MUTATION.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(_clientkit._redact _clientkit._ranges _clientkit._partfile _clientkit._download_options orchestrator._stages orchestrator._journal orchestrator._reconcile)
fi
globs=()
for module in "${modules[@]}"; do
    globs+=("${module}.*")
done
rm -rf mutants  # mutmut caches results by function hash: a changed test would not rerun them
nice -n 15 python3 -m mutmut run --max-children "${MUTMUT_JOBS:-2}" "${globs[@]}"
python3 tests/mutation/score.py "${modules[@]}"
