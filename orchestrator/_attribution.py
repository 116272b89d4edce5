"""Per-input upload callbacks: the service's own word on which media an upload created.

An UploadMedia whose answer was lost leaves media on the account that the journal cannot name. With one
upload at a time the one new media is it (`_reconcile.py`); with several at once, new media cannot be told
apart, because ListMedia names no source. The API document's `notify_url` can: the service POSTs
`{"file_id", "error_code", ...}` to it once the media is analysed (or has failed). Each staged input's
upload carries its own callback URL, keyed by the input's staging token, so a callback attributes one
file_id to exactly one item: in this run, or after a crash in the rerun listening at the same address.

Uploads that no callback can attribute (a URL input, a service without callbacks) still go one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ._service import RemoteStatus

__all__ = ["CallbackHook", "UploadCallbacks"]

CallbackHook = Callable[[str, str, RemoteStatus], None]
"""`hook(token, remote_id, status)`: a callback for the upload of the input staged under `token`."""


@runtime_checkable
class UploadCallbacks(Protocol):
    """Where the service calls back about one input's upload (served next to the staged files)."""

    def url_for(self, token: str) -> str:
        """The `notify_url` to send with the upload of the input staged under `token`."""
        ...

    def set_hook(self, hook: CallbackHook | None) -> None:
        """Call `hook(token, remote_id, status)` for each callback that arrives."""
        ...
