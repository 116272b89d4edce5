"""Command-line entry points: `recuro` and `mediacrush` (the one place that prints)."""
