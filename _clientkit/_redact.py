"""One place that keeps secrets out of reprs, logs and error messages.

`redact_text` masks every occurrence of a secret, also when a server echoes it escaped: JSON
(`\\/`, `\\"`, `\\uXXXX` in any mix), percent-encoding, or HTML character references. `redact_excerpt`
turns the start of a server's body into a short one-line excerpt, masking *before* it cuts (an excerpt
cut first would show the first characters of a secret that straddles the cut).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Final, final

__all__ = [
    "MASK",
    "SENSITIVE_HEADERS",
    "Secret",
    "contains_secret",
    "redact_excerpt",
    "redact_headers",
    "redact_text",
]

SENSITIVE_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie"}
)
HEADER_MASK: Final = "[secure]"
MASK: Final = "***"
# an escape sequence cut short: `\\u00`, `%4`, `&#x4`, `&quo`
_PARTIAL_ESCAPE: Final = (
    r"(?:\\+(?:u[0-9a-fA-F]{0,3})?|%[0-9a-fA-F]?|&#?[xX]?[0-9a-fA-F]*|&[a-zA-Z]*)?"
)
# the letter after the backslash in JSON's short escapes
_JSON_SHORT: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "\b": "b",
    "\f": "f",
    "\n": "n",
    "\r": "r",
    "\t": "t",
}
_HTML_NAMED: Final = {'"': "&quot;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;"}
_SPACES: Final = re.compile(r"\s+")
# anything that can start an escaped character in the forms `_char_pattern` knows (JSON, percent, HTML)
_ESCAPES: Final = re.compile(r"\\|%[0-9A-Fa-f]{2}|&#|&[A-Za-z]+;")
_PATTERNS: dict[str, re.Pattern[str]] = {}
_MAX_PATTERNS: Final = 16


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
        # constant time: a comparison must not tell how many leading characters matched
        return isinstance(other, Secret) and hmac.compare_digest(
            other._value.encode(), self._value.encode()
        )

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy of `headers` with credential headers (any case) replaced by `[secure]`, for logs."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (HEADER_MASK if k.lower() in SENSITIVE_HEADERS else v) for k, v in items}


def _hex(value: int, width: int) -> str:
    """A pattern for `value` in hexadecimal, `width` digits, either case."""
    return "".join(f"[{d}{d.upper()}]" for d in f"{value:0{width}x}")


def _char_pattern(char: str) -> str:
    """Every form in which `char` may be echoed: itself, JSON, percent and HTML escapes."""
    code = ord(char)
    forms = [re.escape(char)]
    # JSON escapes, the backslash itself escaped any number of times (JSON quoted inside JSON)
    if code <= 0xFFFF:
        forms.append(r"\\+u" + _hex(code, 4))
    else:  # a surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + (code & 0x3FF)
        forms.append(r"\\+u" + _hex(high, 4) + r"\\+u" + _hex(low, 4))
    if char in _JSON_SHORT:
        forms.append(r"\\+" + re.escape(_JSON_SHORT[char]))
    forms.append("".join("%" + _hex(byte, 2) for byte in char.encode()))
    if char == " ":
        forms.append(r"\+")
    forms.append(f"&#0*{code};?")
    forms.append(f"&#[xX]0*{_hex(code, 1)};?")
    if char in _HTML_NAMED:
        forms.append(re.escape(_HTML_NAMED[char]))
    return "(?:" + "|".join(forms) + ")"


def _pattern(secret: str) -> re.Pattern[str]:
    # built once per secret: `re` caches compiled patterns by their source, which holds the secret anyway
    pattern = _PATTERNS.get(secret)
    if pattern is None:
        if len(_PATTERNS) >= _MAX_PATTERNS:
            _PATTERNS.clear()
        pattern = _PATTERNS[secret] = re.compile("".join(_char_pattern(c) for c in secret))
    return pattern


def _plain_only(text: str, secret: str) -> bool:
    """True when no escaped form of `secret` can be in `text` (no escape of any kind appears in it),
    so that a plain substring test decides: the common case, and far cheaper than the full pattern."""
    return _ESCAPES.search(text) is None and (" " not in secret or "+" not in text)


def _start_pattern(secret: str) -> re.Pattern[str]:
    """Matches, at the end of a text, an echo of `secret` cut short: up to all but its last character
    (a whole echo was masked already), in any escapes, then possibly an escape cut in the middle."""
    pattern = ""
    for char in reversed(secret[:-1]):
        pattern = f"(?:{_char_pattern(char)}{pattern})?"
    return re.compile(f"{pattern}{_PARTIAL_ESCAPE}\\Z")


def _cut_point(text: str, secrets: Iterable[str]) -> int:
    """Where an echo of a secret, cut short by the end of `text`, begins (`len(text)` if none does).

    The pattern matches at the end of any text (an empty match there when nothing is cut short).
    """
    end = len(text)
    for secret in secrets:
        match = _start_pattern(secret).search(text)
        if match is not None:
            end = min(end, match.start())
    return end


def contains_secret(text: str, secrets: Iterable[str]) -> bool:
    """True when `text` holds any non-empty secret, plain or escaped (one scan per secret)."""
    return any(
        secret in text if _plain_only(text, secret) else _pattern(secret).search(text)
        for secret in secrets
        if secret
    )


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of every non-empty secret, plain or escaped, replaced by `***`.

    Longer secrets are masked first, so a secret that contains another is masked whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if _plain_only(text, secret):
            text = text.replace(secret, MASK)
        else:
            text = _pattern(secret).sub(MASK, text)
    return text


def redact_excerpt(body: bytes | str, secrets: Iterable[str], *, limit: int, cut: bool) -> str:
    """The start of a server's `body` as one printable line of at most `limit` characters.

    Secrets are masked before anything is cut. `cut` says `body` is itself only the first bytes of a
    longer body: a secret may then straddle its end, so an end that could be the start of an echo of a
    secret (plain or escaped, down to one character) is dropped too.
    """
    secrets = tuple(s for s in secrets if s)
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    text = redact_text(text, secrets)
    if cut:
        text = text[: _cut_point(text, secrets)]
    text = "".join(c if c.isprintable() else " " for c in text)
    # masked again: joining whitespace may have assembled a secret that holds a space
    text = redact_text(_SPACES.sub(" ", text).strip(), secrets)
    return text[:limit]
