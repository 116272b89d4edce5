"""Credentials scoped to one origin, so a redirect or an absolute download URL elsewhere never gets them.

Client-wide default headers go to every URL a client fetches (ANCHORS 5.5), so the API credential is an
`httpx.Auth` that looks at each request's origin (scheme, host, port) and adds `Authorization` only for
the API's own origin, and removes a stray `Authorization` from requests to any other origin.

Redirects: httpx runs an auth flow once per `send()`, not once per redirect hop, and when it follows a
redirect to another origin it drops `Authorization` itself (httpx 0.28/0.29 `_redirect_headers`; kept only
for an http -> https upgrade of the same host on the default ports). That is why the credential is
always `Authorization`: any other header name would be forwarded to the other origin.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

import httpx

from _clientkit._redact import Secret, redact_text

__all__ = ["OriginAuth", "origin_of"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def origin_of(url: httpx.URL | str) -> tuple[str, str, int | None]:
    """The (scheme, host, port) origin of `url`, with the scheme's default port filled in."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    scheme = parsed.scheme.lower()
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS.get(scheme)
    return scheme, parsed.host.lower(), port


class OriginAuth(httpx.Auth):
    """Adds `Authorization: <secret>` to requests whose origin equals `origin_url`'s, and to no others.

    Attributes:
        origin: the (scheme, host, port) the credential belongs to.
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(self, origin_url: str, header_value: Secret) -> None:
        if not isinstance(header_value, Secret):
            raise TypeError("header_value must be a _clientkit._redact.Secret, not a plain string")
        try:
            url = httpx.URL(origin_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ValueError("origin_url must be an absolute http:// or https:// URL") from exc
        if url.scheme not in _DEFAULT_PORTS or not url.host:
            raise ValueError("origin_url must be an absolute http:// or https:// URL")
        self.origin = origin_of(url)
        self._value = header_value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin_of(request.url) == self.origin:
            request.headers["Authorization"] = self._value.reveal()
        elif "Authorization" in request.headers:
            del request.headers["Authorization"]
        yield request

    def redact(self, text: str) -> str:
        """`text` with the credential masked (for error-body excerpts that might echo it).

        For a `user:secret` style value the part after the first colon is masked on its own too: a
        server may quote the secret without the key.
        """
        return redact_text(text, self.secrets())

    def secrets(self) -> tuple[str, ...]:
        """What `redact` masks: the header value, and for `user:secret` the part after the colon."""
        value = self._value.reveal()
        _, colon, secret = value.partition(":")
        return (value, secret.strip()) if colon and secret.strip() else (value,)

    def __repr__(self) -> str:
        scheme, host, port = self.origin
        return f"OriginAuth(origin='{scheme}://{host}:{port}', header_value=Secret('***'))"
