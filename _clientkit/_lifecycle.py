"""The lifecycle both clients share: opened once, closed once, the HTTP client closed only if ours."""

from __future__ import annotations

import enum
import warnings
from types import TracebackType
from typing import Self

import httpx

__all__ = ["ClientState", "HTTPClientLifecycle"]


class ClientState(enum.Enum):
    """Where a client is in its life; a closed client cannot be reopened."""

    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class HTTPClientLifecycle:
    """Base for an async API client that owns (or borrows) an `httpx.AsyncClient`.

    `async with` opens it once; `aclose()` closes the HTTP client only if this object created it (a
    caller's `http_client` stays open); a client dropped while open warns with a `ResourceWarning`.
    """

    _http: httpx.AsyncClient
    _owns_http: bool = False
    _state: ClientState = ClientState.UNOPENED

    async def __aenter__(self) -> Self:
        if self._state is not ClientState.UNOPENED:
            raise RuntimeError(
                f"a {type(self).__name__} can be opened once; this one is {self._state.value}"
            )
        self._state = ClientState.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client created it (a caller's `http_client` stays open)."""
        if self._state is ClientState.CLOSED:
            return
        self._state = ClientState.CLOSED
        if self._owns_http:
            await self._http.aclose()

    def _check_open(self) -> None:
        if self._state is ClientState.CLOSED:
            raise RuntimeError(f"this {type(self).__name__} is closed")

    def __del__(self) -> None:
        if self._state is ClientState.OPENED and self._owns_http:
            name = type(self).__name__
            warnings.warn(
                f"{name} was not closed; use 'async with {name}(...)' or await aclose()",
                ResourceWarning,
                stacklevel=2,
            )
