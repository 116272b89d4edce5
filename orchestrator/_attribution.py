"""Per-input upload callbacks: the service's own word on which media an upload created.

An UploadMedia whose answer was lost leaves media on the account that the journal cannot name. With one
upload at a time the one new media is it (`_reconcile.py`); with several at once, new media cannot be told
apart, because ListMedia names no source. The API document's `notify_url` can: the service POSTs
`{"file_id", "error_code", ...}` to it once the media is analysed (or has failed). Each staged input's
upload carries its own callback URL, keyed by the input's staging token, so a callback attributes one
file_id to exactly one item: in this run, or after a crash in the rerun listening at the same address.

Callbacks are evidence, not the condition for overlapping uploads: the service need not call a rerun
back. What makes several uploads in flight safe is the seal (`_seal.py`): an unanswered upload's input
was never served, so its media can only fail. Callbacks still name the media of uploads whose fetch was
served (a service that fetches before it answers) and the orphans of given-up uploads (`_orphans.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from ._service import Notifier, RemoteStatus

__all__ = ["CallbackHook", "StagedCallbacks", "UploadCallbacks"]

_App = Callable[[Any, Any, Any], Awaitable[None]]

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


class Mounting(Protocol):
    """A running server that serves an ASGI app under a path prefix (the staging server)."""

    def mount(self, prefix: str, app: _App) -> str:
        """Serve `app` under `/prefix/`; returns the public URL of that prefix."""
        ...


class StagedCallbacks:
    """Upload callbacks served by the staging server under `/u/<token>/`, read by the service's `Notifier`.

    The URL of a token is the same in every process serving at the same address, so a rerun that binds
    the killed run's port receives the callbacks meant for it.
    """

    def __init__(self, server: Mounting, notifier: Notifier) -> None:
        self._notifier = notifier
        self._hook: CallbackHook | None = None
        self._base = server.mount("u", self._route)

    def __repr__(self) -> str:
        return f"<StagedCallbacks {self._base}/...>"

    def url_for(self, token: str) -> str:
        """The `notify_url` for the upload of the input staged under `token`."""
        return f"{self._base}/{token}/"

    def set_hook(self, hook: CallbackHook | None) -> None:
        """Call `hook(token, remote_id, status)` for each callback that arrives."""
        self._hook = hook

    async def _route(self, scope: Any, receive: Any, send: Any) -> None:
        token = (
            str(scope.get("path", "")).strip("/").split("/")[0] if scope["type"] == "http" else ""
        )
        deliver = functools.partial(self._deliver, token)
        # a receiver whose secret path is the token: any other path is answered 404 by it
        await self._notifier.webhook(deliver, token=token or None)(scope, receive, send)

    def _deliver(self, token: str, remote_id: str, status: RemoteStatus) -> None:
        if self._hook is not None:
            self._hook(token, remote_id, status)
