"""One place that keeps secrets out of reprs, logs and error messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, final

__all__ = ["SENSITIVE_HEADERS", "Secret", "redact_headers", "redact_text"]

SENSITIVE_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie"}
)
_MASK: Final = "[secure]"


@final
class Secret:
    """A string that never shows itself in `repr`, `str` or f-strings; `.reveal()` gets the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the one place that must put it on the wire."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy of `headers` with credential headers masked, for logs and debugging."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (_MASK if k.lower() in SENSITIVE_HEADERS else v) for k, v in items}


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret replaced by `***` (for body excerpts in errors)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
