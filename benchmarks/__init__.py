"""Side-by-side benchmarks of SPEC section 7 (B1 batch, B2 download, B3 limiter, B4 scale).

Run them with ``python3 -m benchmarks`` (``--quick`` for a smoke run, ``--only B2,B3``, ``--out PATH``);
the command writes ``benchmarks/RESULTS-latest.md`` (git-ignored): the machine, every figure, and each SPEC 9
target with its measured value and a pass/miss mark. Only a full run with ``--update-results`` rewrites the
committed numbers of record, ``benchmarks/RESULTS.md``. Benchmarks are not tests and never run in the test suite.
"""
