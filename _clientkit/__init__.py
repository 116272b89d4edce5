"""Private machinery shared by `recuro_async` and `mediacrush_async`.

Limiter, retry policy, transport-error mapping, resumable download, file-name sanitiser and redaction.
Imports none of our packages (an import-linter contract checks it). Not a public API.
"""
