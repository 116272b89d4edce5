"""`python -m recuro_async.testing`: the same as `recuro emulator`."""

from __future__ import annotations

from recuro_async.testing._cli import main

raise SystemExit(main())
