"""Where a client setting comes from (argument, environment, default), and an endpoint named for messages.

Both clients read their settings the way their commands do: an explicit value wins, then the environment
variable (an empty value counts as unset, as shells make it easy to set one by accident), then the default.
"""

from __future__ import annotations

import os

from _clientkit._auth import origin_of

__all__ = ["origin_text", "setting"]


def setting(explicit: str | None, variable: str, default: str) -> tuple[str, str | None]:
    """The value to use, and the variable's name when the value came from the environment."""
    if explicit is not None:
        return explicit, None
    from_env = os.environ.get(variable)
    if from_env:
        return from_env, variable
    return default, None


def origin_text(url: str) -> str:
    """`scheme://host:port` of `url`, for messages: never its path, query or credentials."""
    scheme, host, port = origin_of(url)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"
