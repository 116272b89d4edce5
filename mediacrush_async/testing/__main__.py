"""`python -m mediacrush_async.testing`: the same as `mediacrush emulator`."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
